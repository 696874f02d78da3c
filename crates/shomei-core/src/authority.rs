//! Who may do what to whom. Asked by every use case, on every request.

use crate::{CertState, CompanyId, LoginId, Role, UserId};

/// The user acting, as loaded from the database for this request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Their database id: what ownership checks compare.
    pub user_id: UserId,
    /// Their company: the only company they may act in.
    pub company_id: CompanyId,
    /// Their login ID, as 操作履歴 names the actor.
    pub login_id: LoginId,
    /// Their name (利用者名), for the screens.
    pub name: String,
    /// Their 利用者区分: what they may do.
    pub role: Role,
}

/// The user acted upon.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// Their database id.
    pub user_id: UserId,
    /// Their company: another company's user is refused as if absent.
    pub company_id: CompanyId,
    /// Their 利用者区分 (a マスター is protected from a 管理者).
    pub role: Role,
}

/// Why an operation is refused. Each has its own Japanese message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// A 一般 user asked for a user-management operation.
    #[error("the acting user has no authority for this operation")]
    NoAuthority,
    /// The target does not exist or belongs to another company. The two are
    /// indistinguishable on purpose: tenants never learn of each other.
    #[error("no such user in the acting user's company")]
    NoSuchUser,
    /// A 管理者 acting on a マスター user.
    #[error("an admin user cannot act on the master user")]
    MasterProtected,
    /// The target's certificate is not in a revocable state.
    #[error("the certificate is not revocable in state {0:?}")]
    NotRevocable(CertState),
    /// Someone other than the マスター asked to change the company.
    #[error("only the master user may change the company's information")]
    MasterOnly,
}

impl Refusal {
    /// The screen's message for this refusal.
    pub fn message_ja(self) -> &'static str {
        match self {
            Refusal::NoAuthority => {
                "この操作を行う権限がありません。マスターユーザまたは管理者ユーザに依頼してください。"
            }
            Refusal::NoSuchUser => "指定された利用者は存在しません。",
            Refusal::MasterProtected => {
                "管理者ユーザはマスターユーザに対してこの操作を行うことはできません。"
            }
            Refusal::NotRevocable(_) => {
                "選択された利用者の証明書は失効できません。証明書状態が「発行済」または「更新可」の利用者を選択してください。"
            }
            Refusal::MasterOnly => "企業情報の変更はマスターユーザのみ行うことができます。",
        }
    }
}

/// May `actor` use the user-management screens (利用者一覧 for revocation, …)?
pub fn may_manage_users(actor: &Actor) -> Result<(), Refusal> {
    if actor.role.manages_users() {
        Ok(())
    } else {
        Err(Refusal::NoAuthority)
    }
}

/// May `actor` act on `target` as an administrator (revoke, stop, edit)?
pub fn may_administer(actor: &Actor, target: &Target) -> Result<(), Refusal> {
    may_manage_users(actor)?;
    if actor.company_id != target.company_id {
        return Err(Refusal::NoSuchUser);
    }
    if actor.role == Role::Admin && target.role == Role::Master {
        return Err(Refusal::MasterProtected);
    }
    Ok(())
}

/// May `actor` change the company's own information (企業情報の変更,
/// BSSK003)? The マスター only.
pub fn may_change_company(actor: &Actor) -> Result<(), Refusal> {
    if may_change_company_role(actor.role) {
        Ok(())
    } else {
        Err(Refusal::MasterOnly)
    }
}

/// Does `actor` see only their own 操作履歴 (一般), not the company's?
pub fn sees_own_history_only(actor: &Actor) -> bool {
    !actor.role.manages_users()
}

/// Is `target` offered to `actor` for 利用者変更・削除 on 利用者一覧: another
/// user `actor` may administer (never oneself there).
pub fn offers_to_administer(actor: &Actor, target: &Target) -> bool {
    target.user_id != actor.user_id && may_administer(actor, target).is_ok()
}

/// The authorities a user of `role` holds, as 利用者情報照会 (BRSK005)
/// lists them.
pub fn authorities_ja(role: Role) -> Vec<&'static str> {
    let mut a = if role.manages_users() {
        vec![
            "自身の情報の変更・照会",
            "利用者情報の管理",
            "利用者停止・解除",
            "証明書失効",
            "操作履歴照会（企業の全操作）",
        ]
    } else {
        vec!["自身の情報の変更・照会", "操作履歴照会（自身の操作）"]
    };
    if may_change_company_role(role) {
        a.push("企業情報の変更");
    }
    a
}

fn may_change_company_role(role: Role) -> bool {
    role == Role::Master
}

/// May `actor` revoke the certificate of `target`, now in `state`?
/// The same authority as stopping or editing: a 管理者 cannot revoke the
/// マスター's certificate (a マスター replacing their PC revokes their own,
/// as the guide says). Authority is asked before the state, so a refused
/// actor learns nothing of the certificate.
pub fn may_revoke(actor: &Actor, target: &Target, state: CertState) -> Result<(), Refusal> {
    may_administer(actor, target)?;
    if !state.is_revocable() {
        return Err(Refusal::NotRevocable(state));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn actor(role: Role, company: i64) -> Actor {
        Actor {
            user_id: UserId(1),
            company_id: CompanyId(company),
            login_id: LoginId::parse("actor01").unwrap(),
            name: "x".into(),
            role,
        }
    }

    fn target(role: Role, company: i64) -> Target {
        Target {
            user_id: UserId(2),
            company_id: CompanyId(company),
            role,
        }
    }

    /// Each refusal shows its own message, and it says what was refused:
    /// a screen showing the wrong one (or none) tells the user nothing.
    #[test]
    fn each_refusal_has_its_own_japanese_message() {
        let all = [
            (Refusal::NoAuthority, "この操作を行う権限がありません。"),
            (Refusal::NoSuchUser, "指定された利用者は存在しません。"),
            (
                Refusal::MasterProtected,
                "管理者ユーザはマスターユーザに対してこの操作を行うことはできません。",
            ),
            (
                Refusal::NotRevocable(CertState::Expired),
                "選択された利用者の証明書は失効できません。",
            ),
        ];
        for (r, starts) in all {
            assert!(
                r.message_ja().starts_with(starts),
                "{r:?}: {}",
                r.message_ja()
            );
        }
        assert_eq!(
            Refusal::NoAuthority.message_ja(),
            "この操作を行う権限がありません。マスターユーザまたは管理者ユーザに依頼してください。"
        );
    }

    /// 企業情報の変更 is the マスター's alone; the refusal says so.
    #[test]
    fn only_the_master_changes_the_company() {
        assert_eq!(may_change_company(&actor(Role::Master, 1)), Ok(()));
        for r in [Role::Admin, Role::General] {
            assert_eq!(may_change_company(&actor(r, 1)), Err(Refusal::MasterOnly));
        }
        assert_eq!(
            Refusal::MasterOnly.message_ja(),
            "企業情報の変更はマスターユーザのみ行うことができます。"
        );
    }

    /// 利用者一覧 offers another user the actor may administer, never the
    /// actor, never a マスター to a 管理者.
    #[test]
    fn the_user_list_offers_whom_the_actor_may_administer() {
        use Role::*;
        assert!(offers_to_administer(&actor(Master, 1), &target(Master, 1)));
        assert!(offers_to_administer(&actor(Admin, 1), &target(Admin, 1)));
        assert!(offers_to_administer(&actor(Admin, 1), &target(General, 1)));
        assert!(!offers_to_administer(&actor(Admin, 1), &target(Master, 1)));
        assert!(!offers_to_administer(
            &actor(General, 1),
            &target(General, 1)
        ));
        assert!(!offers_to_administer(
            &actor(Master, 1),
            &target(General, 2)
        ));
        let me = actor(Master, 1);
        let myself = Target {
            user_id: me.user_id,
            company_id: me.company_id,
            role: Master,
        };
        assert!(!offers_to_administer(&me, &myself));
    }

    #[test]
    fn a_general_user_sees_own_history_and_holds_two_authorities() {
        assert!(sees_own_history_only(&actor(Role::General, 1)));
        assert!(!sees_own_history_only(&actor(Role::Admin, 1)));
        assert!(!sees_own_history_only(&actor(Role::Master, 1)));
        assert_eq!(
            authorities_ja(Role::General),
            ["自身の情報の変更・照会", "操作履歴照会（自身の操作）"]
        );
        let admin = authorities_ja(Role::Admin);
        assert_eq!(admin.len(), 5);
        assert!(!admin.contains(&"企業情報の変更"));
        let master = authorities_ja(Role::Master);
        assert_eq!(master[..5], admin[..]);
        assert_eq!(master[5..], ["企業情報の変更"]);
    }

    /// (actor role, target role, target company, target state, expected).
    type Case = (Role, Role, i64, CertState, Result<(), Refusal>);

    #[test]
    fn revocation_authority_table() {
        use Role::*;
        let cases: &[Case] = &[
            (Master, General, 1, CertState::Issued, Ok(())),
            (Master, Admin, 1, CertState::Renewable, Ok(())),
            (Master, Master, 1, CertState::Issued, Ok(())),
            (Admin, General, 1, CertState::Issued, Ok(())),
            (Admin, Admin, 1, CertState::Issued, Ok(())),
            (
                Admin,
                Master,
                1,
                CertState::Issued,
                Err(Refusal::MasterProtected),
            ),
            (
                Admin,
                Master,
                1,
                CertState::Unissued,
                Err(Refusal::MasterProtected),
            ),
            (
                Admin,
                Master,
                2,
                CertState::Issued,
                Err(Refusal::NoSuchUser),
            ),
            (
                General,
                General,
                1,
                CertState::Issued,
                Err(Refusal::NoAuthority),
            ),
            (
                General,
                Master,
                1,
                CertState::Issued,
                Err(Refusal::NoAuthority),
            ),
            (
                Master,
                General,
                2,
                CertState::Issued,
                Err(Refusal::NoSuchUser),
            ),
            (
                Admin,
                General,
                2,
                CertState::Issued,
                Err(Refusal::NoSuchUser),
            ),
            (
                General,
                General,
                2,
                CertState::Issued,
                Err(Refusal::NoAuthority),
            ),
            (
                Master,
                General,
                1,
                CertState::Unissued,
                Err(Refusal::NotRevocable(CertState::Unissued)),
            ),
            (
                Admin,
                General,
                1,
                CertState::Expired,
                Err(Refusal::NotRevocable(CertState::Expired)),
            ),
            (
                Admin,
                General,
                1,
                CertState::Revoked,
                Err(Refusal::NotRevocable(CertState::Revoked)),
            ),
        ];
        for (a, t, company, state, want) in cases {
            let got = may_revoke(&actor(*a, 1), &target(*t, *company), *state);
            assert_eq!(got, *want, "{a:?} -> {t:?} in company {company}, {state:?}");
        }
    }
}
