//! Identifiers and closed vocabularies that validate on construction.

use std::fmt;

/// A company (企業), the tenant boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CompanyId(pub i64);

/// A company user (利用者).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(pub i64);

/// A login ID (ログインID): unique across the bank, half-width alphanumerics.
///
/// Parsed once at the edge so that nothing further in can see a malformed one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LoginId(String);

impl LoginId {
    /// The bank's policy for new login IDs by default (a setting); IDs
    /// already issued are read whatever the policy is now.
    pub const MIN_LEN: usize = 6;
    /// The longest new login ID by default (a setting).
    pub const MAX_LEN: usize = 12;
    /// What any login ID may be at most, whatever the policy.
    pub const LIMIT: usize = 32;

    /// Accepts 1–32 ASCII letters and digits: the form of every login ID.
    /// New IDs must also fit the configured length (`fits`).
    pub fn parse(s: &str) -> Option<Self> {
        let ok =
            (1..=Self::LIMIT).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric());
        ok.then(|| Self(s.to_owned()))
    }

    /// Does this ID fit a policy of `min`–`max` characters?
    pub fn fits(&self, min: usize, max: usize) -> bool {
        (min..=max).contains(&self.0.len())
    }

    /// The ID as given (ASCII letters and digits).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LoginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// 利用者区分: the three kinds of company user in the guide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// マスターユーザ: manages the company's information and every user; a
    /// company keeps at least one.
    Master,
    /// 管理者ユーザ: manages the company's users, but not a マスター.
    Admin,
    /// 一般ユーザ: uses the portal, manages nobody.
    General,
}

impl Role {
    /// The label the guide uses on screens.
    pub fn label(self) -> &'static str {
        match self {
            Role::Master => "マスターユーザ",
            Role::Admin => "管理者ユーザ",
            Role::General => "一般ユーザ",
        }
    }

    /// The stable name stored in the database.
    pub fn code(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Admin => "admin",
            Role::General => "general",
        }
    }

    /// The role of a stored `code`; `None` for anything else.
    pub fn from_code(s: &str) -> Option<Self> {
        match s {
            "master" => Some(Role::Master),
            "admin" => Some(Role::Admin),
            "general" => Some(Role::General),
            _ => None,
        }
    }

    /// マスター and 管理者 hold user-management authority.
    pub fn manages_users(self) -> bool {
        matches!(self, Role::Master | Role::Admin)
    }
}

/// The contracted internet-banking service of a company.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    /// ビジネスIB.
    BusinessIb,
    /// ほっと君WebJr.
    HottokunWebJr,
}

impl Service {
    /// The service's name on screens.
    pub fn label(self) -> &'static str {
        match self {
            Service::BusinessIb => "ビジネスIB",
            Service::HottokunWebJr => "ほっと君WebJr.",
        }
    }

    /// The stable name stored in the database.
    pub fn code(self) -> &'static str {
        match self {
            Service::BusinessIb => "business_ib",
            Service::HottokunWebJr => "hottokun_webjr",
        }
    }

    /// The service of a stored `code`; `None` for anything else.
    pub fn from_code(s: &str) -> Option<Self> {
        match s {
            "business_ib" => Some(Service::BusinessIb),
            "hottokun_webjr" => Some(Service::HottokunWebJr),
            _ => None,
        }
    }
}

/// A certificate serial number as issued by our CA: positive, at most 20 octets.
/// Kept as the minimal big-endian bytes so that the same certificate always has
/// the same key in the database, the CRL and the revocation set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Serial(Vec<u8>);

impl Serial {
    /// From big-endian bytes; leading zero octets are dropped.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let first = bytes.iter().position(|b| *b != 0)?;
        let trimmed = &bytes[first..];
        (trimmed.len() <= 20).then(|| Self(trimmed.to_vec()))
    }

    /// From hex digits (either case, no colons); `None` for an odd length,
    /// a non-hex digit, zero or more than 20 octets.
    pub fn from_hex(s: &str) -> Option<Self> {
        if !s.len().is_multiple_of(2) || s.is_empty() {
            return None;
        }
        let bytes: Option<Vec<u8>> = (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
            .collect();
        Self::from_bytes(&bytes?)
    }

    /// The minimal big-endian octets, as the certificate's DER holds them
    /// (without a sign octet).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Lower-case hex, as stored and as `openssl` prints it (without colons).
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Display for Serial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_id_accepts_the_guide_ids_and_refuses_the_rest() {
        for ok in ["hanakodt", "jirodt", "sachikodt", "ABC123xyz000"] {
            let id = LoginId::parse(ok).unwrap();
            assert!(id.fits(LoginId::MIN_LEN, LoginId::MAX_LEN), "{ok}");
        }
        // The form is fine, the default length is not.
        for (id, fits) in [
            ("short", false),
            ("toolongloginid1", false),
            ("sixsix", true),
        ] {
            let id = LoginId::parse(id).unwrap();
            assert_eq!(id.fits(LoginId::MIN_LEN, LoginId::MAX_LEN), fits);
        }
        for bad in [
            "",
            "abcdefghijklmnopqrstuvwxyz0123456",
            "hanako dt",
            "はなこdt",
            "hanako-dt",
            "hanako'--",
        ] {
            assert!(LoginId::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn serial_round_trips_through_hex_and_drops_leading_zeros() {
        let s = Serial::from_bytes(&[0, 0, 0x12, 0xab]).unwrap();
        assert_eq!(s.to_hex(), "12ab");
        assert_eq!(Serial::from_hex("12ab"), Some(s));
        assert!(Serial::from_hex("0").is_none());
        assert!(Serial::from_hex("zz").is_none());
        assert!(Serial::from_bytes(&[0; 4]).is_none());
        assert!(Serial::from_bytes(&[1; 21]).is_none());
    }

    #[test]
    fn role_codes_round_trip() {
        for r in [Role::Master, Role::Admin, Role::General] {
            assert_eq!(Role::from_code(r.code()), Some(r));
        }
        assert!(Role::from_code("root").is_none());
        assert!(Role::Admin.manages_users() && !Role::General.manages_users());
    }
}
