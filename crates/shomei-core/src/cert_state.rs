//! 証明書状態: derived from the user's most recent certificate and the clock,
//! never stored.

use time::{Duration, OffsetDateTime};

use crate::Serial;

/// RFC 5280 §5.3.1 reason codes we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationReason {
    /// 0: no reason given.
    Unspecified,
    /// 1: the key was (or may have been) disclosed, e.g. the PC was stolen.
    KeyCompromise,
    /// 3: the user left or changed role (利用者削除 revokes with it).
    AffiliationChanged,
    /// 4: replaced by a renewal.
    Superseded,
    /// 5: the certificate is no longer used (the portal's 証明書失効, a
    /// company's 解約, an operator who leaves).
    CessationOfOperation,
}

impl RevocationReason {
    /// Every reason, in the order a phone request's form offers them.
    pub const ALL: [RevocationReason; 5] = [
        RevocationReason::KeyCompromise,
        RevocationReason::AffiliationChanged,
        RevocationReason::CessationOfOperation,
        RevocationReason::Superseded,
        RevocationReason::Unspecified,
    ];

    /// The label on the console's screens.
    pub fn label(self) -> &'static str {
        match self {
            RevocationReason::Unspecified => "理由を特定しない",
            RevocationReason::KeyCompromise => "鍵の漏えい・紛失・盗難（PCの盗難を含む）",
            RevocationReason::AffiliationChanged => "所属・権限の変更",
            RevocationReason::Superseded => "新しい証明書への置き換え",
            RevocationReason::CessationOfOperation => "利用の終了（退職・異動）",
        }
    }

    /// The CRLReason code (RFC 5280 §5.3.1), as CRLs, OCSP and the
    /// database carry it.
    pub fn code(self) -> u8 {
        match self {
            RevocationReason::Unspecified => 0,
            RevocationReason::KeyCompromise => 1,
            RevocationReason::AffiliationChanged => 3,
            RevocationReason::Superseded => 4,
            RevocationReason::CessationOfOperation => 5,
        }
    }

    /// The reason of a CRLReason code; `None` for one we never use.
    pub fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            0 => RevocationReason::Unspecified,
            1 => RevocationReason::KeyCompromise,
            3 => RevocationReason::AffiliationChanged,
            4 => RevocationReason::Superseded,
            5 => RevocationReason::CessationOfOperation,
            _ => return None,
        })
    }
}

/// What the state derivation needs from a certificate record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRecord {
    /// Its serial.
    pub serial: Serial,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity: past it the state is 有効期限切れ.
    pub not_after: OffsetDateTime,
    /// When it was revoked, if it was: then the state is 失効済.
    pub revoked_at: Option<OffsetDateTime>,
}

/// The five states of the guide's 証明書状態 column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CertState {
    /// 未発行: no certificate was ever issued.
    Unissued,
    /// 発行済: valid, not yet in the renewal window.
    Issued,
    /// 更新可: valid and inside the renewal window.
    Renewable,
    /// 有効期限切れ
    Expired,
    /// 失効済
    Revoked,
}

impl CertState {
    /// Derives the state of the user's most recent certificate at `now`.
    pub fn derive(
        latest: Option<&CertRecord>,
        now: OffsetDateTime,
        renewal_window: Duration,
    ) -> CertState {
        let Some(c) = latest else {
            return CertState::Unissued;
        };
        if c.revoked_at.is_some() {
            CertState::Revoked
        } else if now >= c.not_after {
            CertState::Expired
        } else if now >= c.not_after - renewal_window {
            CertState::Renewable
        } else {
            CertState::Issued
        }
    }

    /// The state as the 証明書状態 column writes it.
    pub fn label(self) -> &'static str {
        match self {
            CertState::Unissued => "未発行",
            CertState::Issued => "発行済",
            CertState::Renewable => "更新可",
            CertState::Expired => "有効期限切れ",
            CertState::Revoked => "失効済",
        }
    }

    /// The state a label names (as written by `label`).
    pub fn from_label(s: &str) -> Option<Self> {
        [
            CertState::Unissued,
            CertState::Issued,
            CertState::Renewable,
            CertState::Expired,
            CertState::Revoked,
        ]
        .into_iter()
        .find(|c| c.label() == s)
    }

    /// Only a valid certificate can be revoked.
    pub fn is_revocable(self) -> bool {
        matches!(self, CertState::Issued | CertState::Renewable)
    }

    /// The 証明書有効期限 column shows the expiry only for a valid certificate.
    pub fn shows_expiry(self) -> bool {
        self.is_revocable()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn rec(not_after: OffsetDateTime, revoked: bool) -> CertRecord {
        CertRecord {
            serial: Serial::from_hex("01").unwrap(),
            not_before: not_after - Duration::days(365),
            not_after,
            revoked_at: revoked.then_some(not_after - Duration::days(100)),
        }
    }

    #[test]
    fn states_follow_the_guide_table() {
        let now = datetime!(2010-09-01 00:00 UTC);
        let w = Duration::days(40);
        assert_eq!(CertState::derive(None, now, w), CertState::Unissued);
        let far = rec(now + Duration::days(300), false);
        assert_eq!(CertState::derive(Some(&far), now, w), CertState::Issued);
        let near = rec(now + Duration::days(39), false);
        assert_eq!(CertState::derive(Some(&near), now, w), CertState::Renewable);
        let edge = rec(now + Duration::days(40), false);
        assert_eq!(CertState::derive(Some(&edge), now, w), CertState::Renewable);
        let just_before = rec(now + Duration::days(40) + Duration::seconds(1), false);
        assert_eq!(
            CertState::derive(Some(&just_before), now, w),
            CertState::Issued
        );
        let expired = rec(now, false);
        assert_eq!(
            CertState::derive(Some(&expired), now, w),
            CertState::Expired
        );
        let revoked = rec(now + Duration::days(300), true);
        assert_eq!(
            CertState::derive(Some(&revoked), now, w),
            CertState::Revoked
        );
        // Revoked wins over expired: the record says what happened to it.
        let revoked_expired = rec(now - Duration::days(1), true);
        assert_eq!(
            CertState::derive(Some(&revoked_expired), now, w),
            CertState::Revoked
        );
    }

    #[test]
    fn only_valid_certificates_are_revocable() {
        use CertState::*;
        for (s, want) in [
            (Unissued, false),
            (Issued, true),
            (Renewable, true),
            (Expired, false),
            (Revoked, false),
        ] {
            assert_eq!(s.is_revocable(), want, "{s:?}");
        }
    }

    #[test]
    fn labels_are_the_guide_labels() {
        use CertState::*;
        let labels: Vec<_> = [Unissued, Issued, Renewable, Expired, Revoked]
            .map(|s| s.label())
            .into();
        assert_eq!(
            labels,
            ["未発行", "発行済", "更新可", "有効期限切れ", "失効済"]
        );
    }
}
