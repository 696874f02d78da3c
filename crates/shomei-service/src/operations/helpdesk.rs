//! The help desk in the operator console: find a user across companies,
//! see their state, certificates and 操作履歴, lift their 一時停止/利用停止
//! and revoke their certificate on a phone request.
//!
//! [`Shomei::helpdesk`] hands the tasks only to an operator holding the
//! ヘルプデスク role (a refusal otherwise, with its 操作履歴 row), so a
//! console handler cannot forget the check. Every change asks for the
//! operator's own password first (settled and committed just before the
//! change), then calls the same use case as the CLI: `operator_unlock`
//! (`shomei user unlock`) and `revoke_on_phone_request` (`shomei cert
//! revoke`), which write the change's 操作履歴 row and put a revocation in
//! force.

use crate::Db as _;
use shomei_core::records::AuditRow;
use shomei_core::{CertState, LoginId, Operation, OperatorRole, RevocationReason, Serial};
use shomei_store::{CertRow, SearchFrom, UserHit, UserRow};
use time::OffsetDateTime;

use crate::certificates::revoke::{OperatorRevocation, OperatorRevokeError, PhoneRequest};
use crate::operations::console_access::OperatorContext;
use crate::operations::operator::OperatorError;
use crate::operations::operators::ConsoleOperator;
use crate::{ActionError, Shomei};

/// Users on one page of the search.
pub(crate) const SEARCH_PAGE_SIZE: i64 = 20;
/// 操作履歴 rows shown with a user.
pub(crate) const USER_HISTORY_ROWS: i64 = 50;

/// The console's message for an operator without the role.
pub const NOT_HELPDESK: &str = "この操作はヘルプデスクの役割を持つオペレーターだけが行えます。";
/// The console's message for a login ID nobody has.
pub const NO_SUCH_USER: &str = "指定された利用者は見つかりません。";
/// The console's message for a search text too long.
pub const QUERY_TOO_LONG: &str = "検索条件は64文字以内で入力してください。";
/// The console's message for a page of the search that the URL names
/// wrongly (a key that is no login ID, both directions, a bad number).
pub const SEARCH_PAGE_INVALID: &str =
    "検索結果のページの指定が正しくありません。もう一度検索してください。";
/// The console's message for a phone revocation without its caller.
pub const CALLER_MISSING: &str = "依頼者（お電話の相手）を40文字以内で入力してください。";
/// The console's message for an invalidity date after now.
pub const INVALIDITY_IN_FUTURE: &str = "無効日時に現在より後の日時は指定できません。";

/// What a phone revocation in the console did.
#[derive(Debug, Clone)]
pub enum PhoneRevocationDone {
    /// Revoked, in force at once.
    Revoked(OperatorRevocation),
    /// The bank's rule asks for approvals: submitted as a request.
    Submitted(crate::Submitted),
}

/// One page of users found, by login ID.
#[derive(Debug, Clone)]
pub struct UserSearchPage {
    /// The users of this page.
    pub hits: Vec<UserSearchRow>,
    /// How many match; `None`: more than `count_max` (not counted further).
    pub total: Option<i64>,
    /// The count's cap (`helpdesk_search_count_max`).
    pub count_max: i64,
    /// 1-based, as the pages were followed.
    pub page: i64,
    /// `None` when not counted (more than `count_max`).
    pub pages: Option<i64>,
    /// The key of the page before (its users come before this login ID).
    pub prev: Option<LoginId>,
    /// The key of the page after (its users come after this login ID).
    pub next: Option<LoginId>,
}

/// Which page of a search the URL asks for: the users after a login ID
/// (the next page of one that ends there) or before one (the page before),
/// and the page's number as the pages were followed. All empty: the first
/// page.
#[derive(Debug, Clone, Default)]
pub struct SearchPageKey<'a> {
    /// The login ID the page's users come after (`after` in the URL).
    pub after: Option<&'a str>,
    /// The login ID the page's users come before.
    pub before: Option<&'a str>,
    /// The page's number as the links carried it (a label only).
    pub page: Option<&'a str>,
}

/// A user found by the help desk's search.
#[derive(Debug, Clone)]
pub struct UserSearchRow {
    /// ログインID.
    pub login_id: LoginId,
    /// 利用者名.
    pub name: String,
    /// The user's company.
    pub company: String,
    /// 利用者区分, as the screens write it.
    pub role: &'static str,
    /// The service states (利用可能, 利用停止, …).
    pub states: Vec<&'static str>,
    /// The state of the user's newest certificate.
    pub cert_state: CertState,
    /// The newest certificate's serial number, if there is one.
    pub serial: Option<Serial>,
}

/// A certificate of the user, as the help desk sees it.
#[derive(Debug, Clone)]
pub struct UserCertView {
    /// The certificate's serial number.
    pub serial: Serial,
    /// Start of its validity.
    pub not_before: OffsetDateTime,
    /// End of its validity.
    pub not_after: OffsetDateTime,
    /// When it was revoked, if it was.
    pub revoked_at: Option<OffsetDateTime>,
    /// Its state now.
    pub state: CertState,
}

/// A user in full for the help desk.
#[derive(Debug, Clone)]
pub struct UserDetail {
    /// The user's record.
    pub user: crate::User,
    /// The user's company.
    pub company: String,
    /// The service states (利用可能, 利用停止, …).
    pub states: Vec<&'static str>,
    /// Some lock or stop is set: lifting does something.
    pub stopped: bool,
    /// The newest certificate's state; revocable when 発行済 or 更新可.
    pub cert_state: CertState,
    /// The user's certificates, newest first.
    pub certificates: Vec<UserCertView>,
    /// The user's latest 操作履歴 rows.
    pub history: Vec<AuditRow>,
}

impl UserDetail {
    /// Whether the help desk may revoke the newest certificate (発行済 or 更新可).
    pub fn revocable(&self) -> bool {
        matches!(self.cert_state, CertState::Issued | CertState::Renewable)
    }
}

/// What lifting did.
#[derive(Debug, Clone)]
pub struct LiftDone {
    /// ログインID of the user released.
    pub login_id: LoginId,
    /// 利用者名.
    pub name: String,
    /// The user's company.
    pub company: String,
    /// The states before the release (利用停止, locks).
    pub before: Vec<&'static str>,
}

/// The help desk's tasks for one operator (see [`Shomei::helpdesk`]).
pub struct HelpDeskTasks<'a> {
    pub(crate) svc: &'a Shomei,
    pub(crate) op: &'a ConsoleOperator,
    pub(crate) client: &'a str,
}

/// The serial-number form of a search text: hex digits, ':' and spaces
/// dropped, lower-cased; `None` when it is not that.
fn serial_prefix(q: &str) -> Option<String> {
    let s: String = q
        .chars()
        .filter(|c| !matches!(c, ':' | ' '))
        .collect::<String>()
        .to_ascii_lowercase();
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit())).then_some(s)
}

impl Shomei {
    /// The help desk's tasks, for an operator holding the ヘルプデスク
    /// role; otherwise the refusal (its 操作履歴 row written).
    pub async fn helpdesk<'a>(
        &'a self,
        op: &'a ConsoleOperator,
        client: &'a str,
    ) -> Result<HelpDeskTasks<'a>, ActionError> {
        self.require_operator_role(
            op,
            OperatorRole::HelpDesk,
            Operation::HelpDesk,
            NOT_HELPDESK,
            client,
        )
        .await?;
        Ok(HelpDeskTasks {
            svc: self,
            op,
            client,
        })
    }
}

fn states_of(svc: &Shomei, u: &UserRow) -> Vec<&'static str> {
    u.counters
        .service_states(svc.now())
        .iter()
        .map(|s| s.label())
        .collect()
}

impl HelpDeskTasks<'_> {
    /// Users whose login ID, name or company name starts with `query` (or
    /// a certificate serial, in hex), `SEARCH_PAGE_SIZE` (20) a page by login
    /// ID from `key`; an empty query lists everyone. Counted up to
    /// `helpdesk_search_count_max`. A key that is no login ID, or both
    /// directions at once, or a page number that is no number: refused
    /// with [`SEARCH_PAGE_INVALID`].
    pub async fn search(
        &self,
        query: &str,
        key: &SearchPageKey<'_>,
    ) -> Result<UserSearchPage, ActionError> {
        let q = query.trim();
        if q.chars().count() > 64 {
            return Err(ActionError::Refused(QUERY_TOO_LONG.into()));
        }
        let invalid = || ActionError::Refused(SEARCH_PAGE_INVALID.into());
        let login = |k: &str| LoginId::parse(k).ok_or_else(invalid);
        let (after, before) = match (key.after, key.before) {
            (Some(_), Some(_)) => return Err(invalid()),
            (a, b) => (a.map(login).transpose()?, b.map(login).transpose()?),
        };
        let from = match (&after, &before) {
            (Some(a), _) => SearchFrom::After(a.as_str()),
            (_, Some(b)) => SearchFrom::Before(b.as_str()),
            _ => SearchFrom::First,
        };
        let asked = match key.page {
            None => 1,
            Some(p) => p
                .parse::<i64>()
                .ok()
                .filter(|p| (1..=i64::from(u32::MAX)).contains(p))
                .ok_or_else(invalid)?,
        };
        let serial = serial_prefix(q);
        let count_max = self.svc.settings().helpdesk_search_count_max;
        let search = |from| {
            self.svc
                .store
                .search_users(q, serial.as_deref(), count_max, SEARCH_PAGE_SIZE, from)
        };
        let mut found = search(from).await.db()?;
        // Back at the start with a short page (users added or removed
        // since): the first page, full.
        if !found.more_before
            && from != SearchFrom::First
            && usize::try_from(SEARCH_PAGE_SIZE).is_ok_and(|n| found.hits.len() < n)
        {
            found = search(SearchFrom::First).await.db()?;
        }
        let pages = found
            .total
            .map(|t| ((t + SEARCH_PAGE_SIZE - 1) / SEARCH_PAGE_SIZE).max(1));
        // The number is the one the links carried: a label only, kept
        // within what the page's place allows.
        let page = if found.more_before {
            asked.max(2).min(pages.unwrap_or(i64::MAX))
        } else {
            1
        };
        let prev = found
            .more_before
            .then(|| found.hits.first().map(|h| h.user.login_id.clone()))
            .flatten();
        let next = found
            .more_after
            .then(|| found.hits.last().map(|h| h.user.login_id.clone()))
            .flatten();
        let hits = found
            .hits
            .into_iter()
            .map(
                |UserHit {
                     user,
                     company,
                     cert,
                 }| UserSearchRow {
                    states: states_of(self.svc, &user),
                    cert_state: self
                        .svc
                        .cert_state(cert.as_ref().map(CertRow::record).as_ref()),
                    serial: cert.map(|c| c.serial),
                    login_id: user.login_id,
                    name: user.name,
                    company,
                    role: user.role.label(),
                },
            )
            .collect();
        Ok(UserSearchPage {
            hits,
            total: found.total,
            count_max,
            page,
            pages,
            prev,
            next,
        })
    }

    /// The user with `login_id`: state, certificates, 操作履歴.
    pub async fn user(&self, login_id: &str) -> Result<UserDetail, ActionError> {
        let Some(login) = LoginId::parse(login_id) else {
            return Err(ActionError::Refused(NO_SUCH_USER.into()));
        };
        let Some((user, company)) = self.svc.store.user_with_company(&login).await.db()? else {
            return Err(ActionError::Refused(NO_SUCH_USER.into()));
        };
        let certs = self.svc.store.user_certificates(user.id).await.db()?;
        let history = self
            .svc
            .store
            .audit_about_user(user.company_id, &login, USER_HISTORY_ROWS)
            .await
            .db()?;
        let certificates: Vec<UserCertView> = certs
            .iter()
            .map(|c| UserCertView {
                serial: c.serial.clone(),
                not_before: c.not_before,
                not_after: c.not_after,
                revoked_at: c.revoked_at,
                state: self.svc.cert_state(Some(&c.record())),
            })
            .collect();
        let stopped = user
            .counters
            .service_states(self.svc.now())
            .iter()
            .any(|s| *s != shomei_core::ServiceState::Available);
        Ok(UserDetail {
            states: states_of(self.svc, &user),
            stopped,
            cert_state: certificates
                .first()
                .map_or(CertState::Unissued, |c| c.state),
            certificates,
            history,
            company,
            user: user.into(),
        })
    }

    /// The operator's password, settled and committed before the change.
    async fn confirmed(
        &self,
        password: &str,
        op: Operation,
        target: &str,
    ) -> Result<String, ActionError> {
        let ctx = OperatorContext {
            op,
            target,
            client: self.client,
        };
        let (tx, me) = self.svc.confirm_operator(self.op, password, ctx).await?;
        if !me.operator.roles.has(OperatorRole::HelpDesk) {
            // The role was taken away since this request began.
            return Err(ActionError::Refused(NOT_HELPDESK.into()));
        }
        tx.commit().await.db()?;
        Ok(me.operator.name.to_string())
    }

    /// 一時停止/利用停止の解除 (the CLI's `shomei user unlock`): every lock
    /// and stop of the user's passwords and service released.
    pub async fn lift_stop(&self, login_id: &str, password: &str) -> Result<LiftDone, ActionError> {
        let d = self.user(login_id).await?;
        let name = self
            .confirmed(password, Operation::Unlock, d.user.login_id.as_str())
            .await?;
        match self.svc.operator_unlock(&d.user.login_id, &name).await {
            Ok(()) => Ok(LiftDone {
                login_id: d.user.login_id,
                name: d.user.name,
                company: d.company,
                before: d.states,
            }),
            Err(OperatorError::NoSuchUser(_)) => Err(ActionError::Refused(NO_SUCH_USER.into())),
            Err(OperatorError::Internal(e)) => Err(ActionError::Internal(e)),
            Err(_) => Err(ActionError::Internal(crate::ServiceError::Invariant(
                "unlocking a user refused for another reason than a missing user",
            ))),
        }
    }

    /// 証明書失効 on a phone request (the CLI's `shomei cert revoke`):
    /// the user's certificate in force revoked, in force at once; or, when
    /// the bank's approval rule for a revocation on a company's behalf asks
    /// for approvals, submitted as a request for them.
    pub async fn revoke(
        &self,
        login_id: &str,
        reason: RevocationReason,
        invalidity: Option<OffsetDateTime>,
        caller: &str,
        password: &str,
    ) -> Result<PhoneRevocationDone, ActionError> {
        let caller = caller.trim();
        if caller.is_empty() || caller.chars().count() > 40 || caller.chars().any(char::is_control)
        {
            return Err(ActionError::Refused(CALLER_MISSING.into()));
        }
        if invalidity.is_some_and(|t| t > self.svc.now()) {
            return Err(ActionError::Refused(INVALIDITY_IN_FUTURE.into()));
        }
        let Some(login) = LoginId::parse(login_id) else {
            return Err(ActionError::Refused(NO_SUCH_USER.into()));
        };
        let name = self
            .confirmed(password, Operation::CertificateRevocation, login.as_str())
            .await?;
        let request = PhoneRequest {
            reason,
            invalidity,
            caller,
        };
        let refusal = |e: OperatorRevokeError| match e {
            OperatorRevokeError::NoSuchUser(_) => ActionError::Refused(NO_SUCH_USER.into()),
            OperatorRevokeError::NotInForce { state, .. } => ActionError::Refused(format!(
                "有効な電子証明書がないため失効できません（証明書状態: {state}）。"
            )),
            OperatorRevokeError::InvalidityInFuture => {
                ActionError::Refused(INVALIDITY_IN_FUTURE.into())
            }
            OperatorRevokeError::NeedsApproval { required } => {
                ActionError::Refused(crate::needs_approval_ja(required))
            }
            OperatorRevokeError::Internal(e) => ActionError::Internal(e),
        };
        match self
            .svc
            .revoke_on_phone_request(&login, &request, &name, self.client)
            .await
        {
            Ok(done) => Ok(PhoneRevocationDone::Revoked(done)),
            Err(OperatorRevokeError::NeedsApproval { .. }) => {
                let change = self
                    .svc
                    .phone_revocation_change(&login, &request)
                    .await
                    .map_err(refusal)?;
                let submitted = self
                    .svc
                    .submit_approval(self.op, change, password, self.client)
                    .await?;
                Ok(PhoneRevocationDone::Submitted(submitted))
            }
            Err(e) => Err(refusal(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::serial_prefix;

    #[test]
    fn a_search_text_is_a_serial_prefix_only_when_it_is_hex() {
        assert_eq!(serial_prefix("4F:e0 1a").as_deref(), Some("4fe01a"));
        assert_eq!(serial_prefix("jirodt"), None);
        assert_eq!(serial_prefix(""), None);
        assert_eq!(serial_prefix("株式"), None);
    }
}
