//! Four-eyes approval of the bank's dangerous changes (the operator
//! console): opening and closing a company, registering a マスター when the
//! company has none left, changing an operator's roles, changing the
//! approval rules; the rule table also names resetting a マスター's
//! passwords, adding an operator and a revocation on a company's behalf.
//!
//! The requester submits ([`Shomei::submit_approval`]): the change waits
//! with its data (JSON) and the rule of its kind at that moment (how many
//! operators other than the requester must approve, and which roles may).
//! [`Shomei::approve_request`] counts an approval: never the requester's,
//! never one operator twice (the votes' primary key); the approval that
//! reaches the count commits the change in its own transaction. A
//! rejection ([`Shomei::reject_request`]) ends the request; a request not
//! approved within [`APPROVAL_LIFETIME`] by the service clock expires. Each
//! step is one 操作履歴 row of the bank's own chain, in the transaction of
//! the step; the change writes its own rows (企業登録, 利用者登録, …) beside.
//!
//! Every step is a compare-and-set on the request's `(state, version)`
//! inside the step's transaction, checked by the rows it changed: an
//! approver acts on the version they saw, so of two nodes approving the same
//! request at the same moment one commits, and the other's vote is rolled
//! back and it is told what became of the request
//! ([`ApprovalRefusal::AlreadyCommitted`] when the other's approval carried
//! it out). PostgreSQL: both transactions may have read the request pending;
//! the second UPDATE waits for the first's row lock and then finds the row
//! moved. SQLite: the second transaction waits for the write lock at its
//! BEGIN, then reads the request carried out.

use crate::Db as _;
use serde::{Deserialize, Serialize};
use shomei_core::records::ApprovalVoteRow;
use shomei_core::{
    CertState, CompanyId, LoginId, Operation, OperatorName, OperatorRole, OperatorRoles, Outcome,
    RevocationReason, Service,
};
use shomei_store::{ApprovalRequestRow, NewApprovalRequest, Tx};
use time::{Duration, OffsetDateTime};

use crate::certificates::revocation::PendingRevocation;
use crate::certificates::revoke::PhoneRequest;
use crate::operations::console_access::{OperatorContext, operator_row};
use crate::operations::helpdesk_reset::{MasterPasswords, MasterResetDone};
use crate::operations::operator::{
    DraftProblem, MasterDraft, OperatorError, PreparedPasswords, TemporaryPasswords, company_name,
};
use crate::operations::operator_add::{PreparedOperator, operator_email};
use crate::operations::operators::{
    ConsoleOperator, NewOperator, OperatorAdminError, operator_fields,
};
use crate::{ActionError, ServiceError, Shomei};

/// How long a request waits for its approvals.
pub(crate) const APPROVAL_LIFETIME: Duration = Duration::hours(24);
/// The most approvals a rule may ask for.
pub const MAX_REQUIRED: u32 = 5;
/// Requests on one page of the list.
pub(crate) const APPROVAL_PAGE_SIZE: i64 = 20;

/// RFC 5280 CRLReason cessationOfOperation: the company's contract ended.
const REASON_CESSATION: u8 = 5;

/// A kind of change under four-eyes approval (the rule table's rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApprovalKind {
    /// Opening a company with its first マスター.
    OpenCompany,
    /// Closing a company (解約).
    CloseCompany,
    /// Registering a マスター for a company that has none left.
    RegisterMaster,
    /// Resetting a マスター's passwords (the help desk's reset asks the rule).
    ResetMasterPasswords,
    /// Adding an operator.
    AddOperator,
    /// Changing an operator's roles.
    ChangeOperatorRoles,
    /// Changing a rule of this table.
    ChangeApprovalRule,
    /// A revocation on a company's behalf: no approval unless the bank adds
    /// it (required 0 by default).
    RevokeForCompany,
}

impl ApprovalKind {
    /// Every kind, in the order the rule table lists them.
    pub const ALL: [ApprovalKind; 8] = [
        ApprovalKind::OpenCompany,
        ApprovalKind::CloseCompany,
        ApprovalKind::RegisterMaster,
        ApprovalKind::ResetMasterPasswords,
        ApprovalKind::AddOperator,
        ApprovalKind::ChangeOperatorRoles,
        ApprovalKind::ChangeApprovalRule,
        ApprovalKind::RevokeForCompany,
    ];

    /// The stable name stored and given to the CLI.
    pub fn code(self) -> &'static str {
        match self {
            ApprovalKind::OpenCompany => "open-company",
            ApprovalKind::CloseCompany => "close-company",
            ApprovalKind::RegisterMaster => "register-master",
            ApprovalKind::ResetMasterPasswords => "reset-master-passwords",
            ApprovalKind::AddOperator => "add-operator",
            ApprovalKind::ChangeOperatorRoles => "change-operator-roles",
            ApprovalKind::ChangeApprovalRule => "change-approval-rule",
            ApprovalKind::RevokeForCompany => "revoke-for-company",
        }
    }

    /// The kind a stored or given code names, if any.
    pub fn from_code(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == s)
    }

    /// The label on the console's screens.
    pub fn label(self) -> &'static str {
        match self {
            ApprovalKind::OpenCompany => "企業開設（マスター登録を含む）",
            ApprovalKind::CloseCompany => "企業解約",
            ApprovalKind::RegisterMaster => "マスター登録",
            ApprovalKind::ResetMasterPasswords => "マスターのパスワード初期化",
            ApprovalKind::AddOperator => "オペレーター登録",
            ApprovalKind::ChangeOperatorRoles => "オペレーター役割変更",
            ApprovalKind::ChangeApprovalRule => "承認ルール変更",
            ApprovalKind::RevokeForCompany => "企業に代わる証明書失効",
        }
    }

    /// The role that submits this kind of change.
    pub(crate) fn requester_role(self) -> OperatorRole {
        match self {
            ApprovalKind::OpenCompany
            | ApprovalKind::CloseCompany
            | ApprovalKind::RegisterMaster => OperatorRole::BusinessAdmin,
            ApprovalKind::ResetMasterPasswords | ApprovalKind::RevokeForCompany => {
                OperatorRole::HelpDesk
            }
            ApprovalKind::AddOperator
            | ApprovalKind::ChangeOperatorRoles
            | ApprovalKind::ChangeApprovalRule => OperatorRole::OperationsAdmin,
        }
    }

    /// The fewest approvals a rule may ask: four eyes on every kind the
    /// bank must not do alone; a revocation on a company's behalf only
    /// when the bank adds it.
    pub(crate) fn min_required(self) -> u32 {
        match self {
            ApprovalKind::RevokeForCompany => 0,
            _ => 1,
        }
    }

    /// The rule when the bank has set none.
    pub(crate) fn default_rule(self) -> (u32, OperatorRoles) {
        let roles =
            OperatorRoles::from_roles([self.requester_role()]).expect("one role is a set of roles");
        (self.min_required(), roles)
    }
}

/// The rule of a kind in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRule {
    /// The kind of change the rule is for.
    pub kind: ApprovalKind,
    /// Approvals by operators other than the requester.
    pub required: u32,
    /// Roles whose holders may approve.
    pub roles: OperatorRoles,
    /// When and by whom it was last changed (`None`: the default).
    pub changed: Option<(OffsetDateTime, String)>,
}

/// A change waiting for approval, as stored (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ApprovalChange {
    /// A company with its first マスター.
    OpenCompany {
        /// The new company's name.
        company: String,
        /// Its contracted service (code).
        service: String,
        /// The first マスター's ログインID.
        login_id: String,
        /// The マスター's name.
        name: String,
        /// The マスター's e-mail address.
        email: String,
    },
    /// 解約: its users stopped, its certificates revoked.
    CloseCompany {
        /// The company's id.
        company_id: i64,
        /// The company's name (as shown when submitted).
        company: String,
    },
    /// A new マスター of a company that has none left.
    RegisterMaster {
        /// The company's id.
        company_id: i64,
        /// The company's name (as shown when submitted).
        company: String,
        /// The new マスター's ログインID.
        login_id: String,
        /// The マスター's name.
        name: String,
        /// The マスター's e-mail address.
        email: String,
    },
    /// A マスター's passwords replaced by one-time passwords (`passwords`:
    /// login, confirm or both), shown once to the approver who commits it.
    ResetMasterPasswords {
        /// The company's id.
        company_id: i64,
        /// The company's name (as shown when submitted).
        company: String,
        /// The マスター's ログインID.
        login_id: String,
        /// Which passwords (`login`, `confirm` or `both`).
        passwords: String,
    },
    /// A new operator (name, role codes, e-mail address); the key and
    /// certificate are made by the approval that commits it.
    AddOperator {
        /// The operator's name.
        name: String,
        /// Their role codes, separated by `,`.
        roles: String,
        /// Their e-mail address.
        email: String,
    },
    /// An operator's roles replaced.
    ChangeOperatorRoles {
        /// The operator's name.
        operator: String,
        /// The new role codes, separated by `,`.
        roles: String,
    },
    /// A rule of the approval table changed.
    ChangeApprovalRule {
        /// The kind's code.
        rule: String,
        /// Approvals it will require.
        required: u32,
        /// Role codes whose holders may approve, separated by `,`.
        roles: String,
    },
    /// A certificate revoked on a company's behalf (a phone request), when
    /// the bank's rule for it asks for approval: the certificate in force
    /// at the submit (`serial`), the CRL reason code, the invalidity date
    /// (Unix seconds; as the screens show it beside) and who called.
    RevokeCertificate {
        /// The company's id.
        company_id: i64,
        /// The company's name (as shown when submitted).
        company: String,
        /// The certificate's user's ログインID.
        login_id: String,
        /// The certificate in force at the submit (hex serial).
        serial: String,
        /// The CRL reason code.
        reason: u8,
        /// The invalidity date, Unix seconds.
        invalidity: Option<i64>,
        /// The invalidity date as the screens show it.
        invalidity_shown: String,
        /// Who called.
        caller: String,
    },
}

impl ApprovalChange {
    /// The kind of this change (whose rule applies).
    pub fn kind(&self) -> ApprovalKind {
        match self {
            ApprovalChange::OpenCompany { .. } => ApprovalKind::OpenCompany,
            ApprovalChange::CloseCompany { .. } => ApprovalKind::CloseCompany,
            ApprovalChange::RegisterMaster { .. } => ApprovalKind::RegisterMaster,
            ApprovalChange::ResetMasterPasswords { .. } => ApprovalKind::ResetMasterPasswords,
            ApprovalChange::AddOperator { .. } => ApprovalKind::AddOperator,
            ApprovalChange::ChangeOperatorRoles { .. } => ApprovalKind::ChangeOperatorRoles,
            ApprovalChange::ChangeApprovalRule { .. } => ApprovalKind::ChangeApprovalRule,
            ApprovalChange::RevokeCertificate { .. } => ApprovalKind::RevokeForCompany,
        }
    }

    /// One line for lists and 操作履歴.
    pub fn summary(&self) -> String {
        match self {
            ApprovalChange::OpenCompany {
                company, login_id, ..
            } => format!("企業開設: {company}（マスター {login_id}）"),
            ApprovalChange::CloseCompany {
                company,
                company_id,
            } => format!("企業解約: {company}（企業番号 {company_id}）"),
            ApprovalChange::RegisterMaster {
                company, login_id, ..
            } => format!("マスター登録: {company}（{login_id}）"),
            ApprovalChange::ResetMasterPasswords {
                company,
                login_id,
                passwords,
                ..
            } => format!(
                "マスターのパスワード初期化: {company}（{login_id}、{}）",
                MasterPasswords::from_code(passwords).map_or("?", MasterPasswords::label)
            ),
            ApprovalChange::AddOperator { name, roles, .. } => format!(
                "オペレーター登録: {name}（{}）",
                OperatorRoles::parse(roles)
                    .map(|r| r.labels())
                    .unwrap_or_default()
            ),
            ApprovalChange::ChangeOperatorRoles { operator, roles } => format!(
                "オペレーター役割変更: {operator}（{}）",
                OperatorRoles::parse(roles)
                    .map(|r| r.labels())
                    .unwrap_or_default()
            ),
            ApprovalChange::ChangeApprovalRule {
                rule,
                required,
                roles,
            } => format!(
                "承認ルール変更: {}（承認 {required}名、{}）",
                ApprovalKind::from_code(rule).map_or("?", ApprovalKind::label),
                OperatorRoles::parse(roles)
                    .map(|r| r.labels())
                    .unwrap_or_default()
            ),
            ApprovalChange::RevokeCertificate {
                company,
                login_id,
                serial,
                ..
            } => format!("企業に代わる証明書失効: {company}（{login_id}、シリアル番号 {serial}）"),
        }
    }

    /// The fields as the detail screen shows them: (label, value).
    pub fn rows(&self) -> Vec<(&'static str, String)> {
        match self {
            ApprovalChange::OpenCompany {
                company,
                service,
                login_id,
                name,
                email,
            } => vec![
                ("企業名", company.clone()),
                (
                    "契約サービス",
                    Service::from_code(service)
                        .map_or_else(|| service.clone(), |s| s.label().to_owned()),
                ),
                ("マスターのログインID", login_id.clone()),
                ("マスターの利用者名", name.clone()),
                ("マスターのメールアドレス", email.clone()),
            ],
            ApprovalChange::CloseCompany {
                company_id,
                company,
            } => vec![
                ("企業番号", company_id.to_string()),
                ("企業名", company.clone()),
                (
                    "実行内容",
                    "全利用者の利用停止、全電子証明書の失効".to_owned(),
                ),
            ],
            ApprovalChange::RegisterMaster {
                company_id,
                company,
                login_id,
                name,
                email,
            } => vec![
                ("企業番号", company_id.to_string()),
                ("企業名", company.clone()),
                ("ログインID", login_id.clone()),
                ("利用者名", name.clone()),
                ("メールアドレス", email.clone()),
            ],
            ApprovalChange::ResetMasterPasswords {
                company_id,
                company,
                login_id,
                passwords,
            } => vec![
                ("企業番号", company_id.to_string()),
                ("企業名", company.clone()),
                ("ログインID", login_id.clone()),
                (
                    "初期化するパスワード",
                    MasterPasswords::from_code(passwords)
                        .map_or("?", MasterPasswords::label)
                        .to_owned(),
                ),
                (
                    "実行内容",
                    "初期パスワードの発行（承認したオペレーターの画面に一度だけ表示、次回ログイン時に変更が必要）".to_owned(),
                ),
            ],
            ApprovalChange::AddOperator { name, roles, email } => vec![
                ("オペレーター", name.clone()),
                (
                    "役割",
                    OperatorRoles::parse(roles)
                        .map(|r| r.labels())
                        .unwrap_or_default(),
                ),
                ("メールアドレス", email.clone()),
                (
                    "実行内容",
                    "オペレーター証明書の発行（PKCS#12ファイルは承認したオペレーターの画面から一度だけダウンロード）".to_owned(),
                ),
            ],
            ApprovalChange::ChangeOperatorRoles { operator, roles } => vec![
                ("オペレーター", operator.clone()),
                (
                    "変更後の役割",
                    OperatorRoles::parse(roles)
                        .map(|r| r.labels())
                        .unwrap_or_default(),
                ),
            ],
            ApprovalChange::ChangeApprovalRule {
                rule,
                required,
                roles,
            } => vec![
                (
                    "対象の変更",
                    ApprovalKind::from_code(rule)
                        .map_or("?", ApprovalKind::label)
                        .to_owned(),
                ),
                ("必要な承認数", format!("{required}名")),
                (
                    "承認できる役割",
                    OperatorRoles::parse(roles)
                        .map(|r| r.labels())
                        .unwrap_or_default(),
                ),
            ],
            ApprovalChange::RevokeCertificate {
                company_id,
                company,
                login_id,
                serial,
                reason,
                invalidity,
                invalidity_shown,
                caller,
            } => vec![
                ("企業番号", company_id.to_string()),
                ("企業名", company.clone()),
                ("ログインID", login_id.clone()),
                ("シリアル番号", serial.clone()),
                (
                    "失効理由",
                    RevocationReason::from_code(*reason)
                        .map_or_else(|| reason.to_string(), |r| r.label().to_owned()),
                ),
                (
                    "無効日時",
                    if invalidity.is_some() {
                        invalidity_shown.clone()
                    } else {
                        "－".to_owned()
                    },
                ),
                ("依頼者", if caller.is_empty() { "－".to_owned() } else { caller.clone() }),
            ],
        }
    }
}

/// Why an approval step did nothing: English (CLI, logs) by `Display`,
/// Japanese for the console by [`ApprovalRefusal::message_ja`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalRefusal {
    /// The operator lacks the role that submits this kind.
    #[error("submitting this change needs the {} role", .0.code())]
    NotRequesterRole(OperatorRole),
    /// The requester may not approve their own request.
    #[error("you submitted this request; another operator must approve it")]
    OwnRequest,
    /// The operator has voted on this request already.
    #[error("you have already approved or rejected this request; nobody counts twice")]
    AlreadyVoted,
    /// The operator holds none of the roles that may approve.
    #[error("only operators with the role(s) {} may approve this request", .0.codes())]
    MayNotApprove(OperatorRoles),
    /// No request has this number.
    #[error("no approval request number {0}")]
    NoSuchRequest(i64),
    /// The request was decided already (its state).
    #[error("the request is {0} already")]
    NotPending(&'static str),
    /// The request's version is not the one the operator saw.
    #[error("the request changed meanwhile (another operator acted on it); look at it again")]
    Changed,
    /// Approved and carried out already (by the operator named): the
    /// change is not made again.
    #[error("the request was approved and carried out already (by {0}); nothing more to do")]
    AlreadyCommitted(String),
    /// The request's time ran out.
    #[error("the request expired before it was approved")]
    Expired,
    /// No company has this number.
    #[error("no company number {0}")]
    NoSuchCompany(i64),
    /// The company was closed already.
    #[error("company {0} is closed already")]
    CompanyClosed(i64),
    /// The company still has a マスター.
    #[error(
        "company {0} still has a マスター user; a new one is registered only when none is left"
    )]
    MasterLeft(i64),
    /// Another user has this login ID.
    #[error("login ID {0} is already taken (login IDs are unique across the bank)")]
    LoginIdTaken(String),
    /// No active operator has this name.
    #[error("no active operator named {0}")]
    NoSuchOperator(String),
    /// No user has this login ID.
    #[error("no user with login ID {0}")]
    NoSuchUser(String),
    /// Another operator has this name.
    #[error("an operator named {0} already exists")]
    OperatorNameTaken(String),
    /// A break-glass change came without its reason.
    #[error(
        "a break-glass change needs --reason \"…\" (1-200 characters): why it cannot wait for another operator's approval"
    )]
    ReasonMissing,
    /// The user is not a マスター of the company.
    #[error(
        "user {0} is not a マスター of that company (other users' passwords are reset at once)"
    )]
    NotMaster(String),
    /// The certificate of the request is not in force any more.
    #[error(
        "user {0} has no certificate in force with that serial any more (revoked or renewed meanwhile)"
    )]
    CertNotInForce(String),
    /// A field does not pass its check.
    #[error("{}", .0.english())]
    Invalid(InvalidField),
}

/// A field of a change that does not pass its check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidField {
    /// The company's name.
    CompanyName,
    /// The service code.
    Service,
    /// A login ID, outside the policy's lengths.
    LoginId {
        /// The shortest allowed.
        min: usize,
        /// The longest allowed.
        max: usize,
    },
    /// A user's name.
    UserName,
    /// An e-mail address.
    Email,
    /// Role codes.
    Roles,
    /// A rule's kind code.
    Rule,
    /// The approvals a rule requires, below the least allowed.
    Required {
        /// The least allowed.
        min: u32,
    },
    /// Which passwords to reset.
    Passwords,
    /// An operator's name.
    OperatorName,
    /// A revocation reason or a break-glass reason.
    Reason,
}

impl InvalidField {
    fn english(self) -> String {
        match self {
            InvalidField::CompanyName => {
                "the company name must be 1-60 characters without control characters".into()
            }
            InvalidField::Service => "unknown service".into(),
            InvalidField::LoginId { min, max } => {
                format!("invalid login ID: {min}-{max} half-width letters and digits")
            }
            InvalidField::UserName => {
                "the user name must be 1-40 characters without control characters".into()
            }
            InvalidField::Email => "invalid e-mail address".into(),
            InvalidField::Roles => {
                "invalid roles: one or more of helpdesk, business-admin, audit, operations-admin"
                    .into()
            }
            InvalidField::Rule => "unknown kind of change".into(),
            InvalidField::Passwords => "passwords to reset: login, confirm or both".into(),
            InvalidField::Reason => "unknown revocation reason".into(),
            InvalidField::OperatorName => {
                "invalid operator name: 1-32 half-width letters, digits, '.', '-' or '_'".into()
            }
            InvalidField::Required { min } => {
                format!("the number of approvals must be {min}-{MAX_REQUIRED}")
            }
        }
    }

    fn japanese(self) -> String {
        match self {
            InvalidField::CompanyName => {
                "企業名は60文字以内で入力してください（制御文字は使えません）。".into()
            }
            InvalidField::Service => "契約サービスを選択してください。".into(),
            InvalidField::LoginId { min, max } => {
                format!("ログインIDは{min}～{max}桁の半角英数字で入力してください。")
            }
            InvalidField::UserName => "利用者名は40文字以内で入力してください。".into(),
            InvalidField::Email => "メールアドレスの形式が正しくありません。".into(),
            InvalidField::Roles => "役割を1つ以上選択してください。".into(),
            InvalidField::Rule => "対象の変更を選択してください。".into(),
            InvalidField::Passwords => "初期化するパスワードを選択してください。".into(),
            InvalidField::Reason => "失効理由を選択してください。".into(),
            InvalidField::OperatorName => {
                "オペレーター名は32文字以内の半角英数字と「.」「-」「_」で入力してください。".into()
            }
            InvalidField::Required { min } => {
                format!("必要な承認数は{min}～{MAX_REQUIRED}名で指定してください。")
            }
        }
    }
}

/// Why a step on `r` does nothing once another step moved it: carried out
/// already, rejected or expired, or (still pending) changed.
fn moved_on(r: &ApprovalRequestRow) -> ApprovalRefusal {
    match r.state.as_str() {
        "pending" => ApprovalRefusal::Changed,
        "committed" => ApprovalRefusal::AlreadyCommitted(r.decided_by.clone().unwrap_or_default()),
        s => ApprovalRefusal::NotPending(state_label(s)),
    }
}

fn state_label(state: &str) -> &'static str {
    match state {
        "pending" => "承認待ち",
        "committed" => "承認済み（実行済み）",
        "rejected" => "否認",
        "expired" => "期限切れ",
        _ => "不明",
    }
}

impl ApprovalRefusal {
    /// The console's message.
    pub fn message_ja(&self) -> String {
        match self {
            ApprovalRefusal::NotRequesterRole(r) => format!(
                "この申請は{}の役割を持つオペレーターだけが行えます。",
                r.label()
            ),
            ApprovalRefusal::OwnRequest => OWN_REQUEST.into(),
            ApprovalRefusal::AlreadyVoted => ALREADY_VOTED.into(),
            ApprovalRefusal::MayNotApprove(roles) => format!(
                "この申請を承認・否認できるのは{}の役割を持つオペレーターです。",
                roles.labels()
            ),
            ApprovalRefusal::NoSuchRequest(_) => "指定された申請は見つかりません。".into(),
            ApprovalRefusal::NotPending(s) => {
                format!("この申請はすでに「{s}」のため、操作できません。")
            }
            ApprovalRefusal::Changed => CHANGED.into(),
            ApprovalRefusal::AlreadyCommitted(by) => already_committed(by),
            ApprovalRefusal::Expired => EXPIRED.into(),
            ApprovalRefusal::NoSuchCompany(_) => "指定された企業は見つかりません。".into(),
            ApprovalRefusal::CompanyClosed(_) => "この企業はすでに解約されています。".into(),
            ApprovalRefusal::MasterLeft(_) => MASTER_LEFT.into(),
            ApprovalRefusal::LoginIdTaken(_) => "このログインIDはすでに使われています。".into(),
            ApprovalRefusal::NoSuchOperator(_) => "指定されたオペレーターは見つかりません。".into(),
            ApprovalRefusal::NoSuchUser(_) => "指定された利用者は見つかりません。".into(),
            ApprovalRefusal::ReasonMissing => {
                "承認を省略する理由を200文字以内で入力してください。".into()
            }
            ApprovalRefusal::OperatorNameTaken(_) => {
                "このオペレーター名はすでに使われています。".into()
            }
            ApprovalRefusal::NotMaster(_) => {
                "この利用者はこの企業のマスターではありません。".into()
            }
            ApprovalRefusal::CertNotInForce(_) => {
                "この利用者の電子証明書は、すでに失効または更新されています。".into()
            }
            ApprovalRefusal::Invalid(f) => f.japanese(),
        }
    }
}

/// The console's message when the requester tries to approve their own.
pub const OWN_REQUEST: &str =
    "ご自身が申請した変更は承認できません。ほかのオペレーターの承認が必要です。";
/// The console's message for a second vote of one operator.
pub const ALREADY_VOTED: &str =
    "この申請はすでに承認または否認しています。同じオペレーターは一度だけ数えます。";
/// The console's message when another step came first.
pub(crate) const CHANGED: &str = "この申請は他のオペレーターの操作により更新されました。申請内容を確認して、もう一度操作してください。";
/// The console's message for a step on a request carried out already:
/// `by` is the operator whose approval committed it.
pub fn already_committed(by: &str) -> String {
    format!(
        "この申請は{by}さんの承認により、すでに実行されています。変更をもう一度行う必要はありません。"
    )
}
/// The console's message for an expired request.
pub const EXPIRED: &str =
    "この申請は承認期限を過ぎたため無効になりました。必要であれば、もう一度申請してください。";
/// The console's message when the company still has a マスター.
pub const MASTER_LEFT: &str = "この企業にはマスターが登録されています。マスターの登録は、マスターがいない企業にだけ行えます。";

/// Why a step did nothing.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// A refusal of the step, for the screen or the CLI.
    #[error(transparent)]
    Refused(#[from] ApprovalRefusal),
    /// The operator's password (its Japanese message).
    #[error("{0}")]
    Password(String),
    /// Our own trouble, not the operator's.
    #[error(transparent)]
    Internal(#[from] ServiceError),
}

impl From<crate::DatabaseError> for ApprovalError {
    fn from(e: crate::DatabaseError) -> Self {
        Self::Internal(e.into())
    }
}

impl From<ApprovalError> for ActionError {
    fn from(e: ApprovalError) -> Self {
        match e {
            ApprovalError::Refused(r) => ActionError::Refused(r.message_ja()),
            ApprovalError::Password(m) => ActionError::Refused(m),
            ApprovalError::Internal(e) => ActionError::Internal(e),
        }
    }
}

/// A request as the list and detail screens show it.
#[derive(Debug, Clone)]
pub struct ApprovalView {
    /// The request's number.
    pub id: i64,
    /// Its kind.
    pub kind: ApprovalKind,
    /// The change asked for.
    pub change: ApprovalChange,
    /// The change in one line.
    pub summary: String,
    /// Who submitted it.
    pub requester: String,
    /// When it was submitted.
    pub requested_at: OffsetDateTime,
    /// When it expires unless approved.
    pub expires_at: OffsetDateTime,
    /// Approvals it needs.
    pub required: u32,
    /// Roles whose holders may approve it.
    pub roles: OperatorRoles,
    /// Approvals it has.
    pub approvals: u32,
    /// Its state as the console writes it.
    pub state: &'static str,
    /// pending, committed, rejected or expired (the CLI's words).
    pub state_code: &'static str,
    /// Whether it still waits for a decision.
    pub pending: bool,
    /// Its version, which a vote must name (another's vote changes it).
    pub version: i64,
    /// When it was committed, rejected or expired.
    pub decided_at: Option<OffsetDateTime>,
    /// Who decided it.
    pub decided_by: Option<String>,
    /// The votes on it, in order.
    pub votes: Vec<ApprovalVoteRow>,
}

/// A page of requests.
#[derive(Debug, Clone)]
pub struct ApprovalPage {
    /// The requests of this page.
    pub requests: Vec<ApprovalView>,
    /// Requests in all, on every page.
    pub total: i64,
    /// This page's number (1-based).
    pub page: i64,
    /// Pages in all (at least 1).
    pub pages: i64,
}

/// Who submits a request: an operator in the console, or the shell user
/// (`cli:<user>`).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Requester<'a> {
    Operator(i64),
    Shell(&'a str),
}

/// What a submit did.
#[derive(Debug, Clone)]
pub struct Submitted {
    /// The request's number.
    pub id: i64,
    /// The change in one line.
    pub summary: String,
    /// Approvals it needs.
    pub required: u32,
    /// Roles whose holders may approve it.
    pub roles: OperatorRoles,
    /// When it expires unless approved.
    pub expires_at: OffsetDateTime,
}

/// What a committed change did. Temporary passwords are shown once, to the
/// operator whose approval committed it (they hand them to the customer).
#[derive(Debug, Clone)]
pub enum Applied {
    /// The company and its first マスター.
    CompanyOpened {
        /// The new company's id.
        company_id: CompanyId,
        /// Its name.
        company: String,
        /// The マスター's ログインID.
        login_id: String,
        /// The マスター's temporary passwords.
        passwords: TemporaryPasswords,
    },
    /// The company closed.
    CompanyClosed {
        /// The company's id.
        company_id: CompanyId,
        /// Its name.
        company: String,
        /// Users stopped.
        users_stopped: usize,
        /// Certificates revoked.
        certificates_revoked: usize,
    },
    /// The new マスター.
    MasterRegistered {
        /// The company's id.
        company_id: CompanyId,
        /// Its name.
        company: String,
        /// The マスター's ログインID.
        login_id: String,
        /// The マスター's temporary passwords.
        passwords: TemporaryPasswords,
    },
    /// A マスター's one-time passwords, for the approver to hand over.
    MasterPasswordsReset {
        /// The company's name.
        company: String,
        /// The passwords and whose they are.
        done: MasterResetDone,
    },
    /// The new operator's PKCS#12 and passwords, handed to the approver
    /// whose approval committed it, once.
    OperatorAdded(NewOperator),
    /// An operator's new roles.
    RolesChanged {
        /// The operator's name.
        operator: String,
        /// The roles they hold now.
        roles: OperatorRoles,
    },
    /// The rule as it is now.
    RuleChanged(ApprovalRule),
    /// A certificate revoked on a company's behalf, in force once committed.
    CertificateRevoked {
        /// The company's name.
        company: String,
        /// The certificate's user's ログインID.
        login_id: String,
        /// The revoked certificate's serial (hex).
        serial: String,
    },
}

/// What an approval did.
#[derive(Debug, Clone)]
pub enum Approved {
    /// Counted; more approvals needed.
    Waiting {
        /// The request's number.
        id: i64,
        /// Approvals it has.
        approvals: u32,
        /// Approvals it needs.
        required: u32,
    },
    /// The last approval: the change committed with it.
    Committed {
        /// The request's number.
        id: i64,
        /// What the change did.
        applied: Applied,
    },
}

/// What is made outside the transaction for a commit (slow hashing).
pub(crate) enum Material {
    None,
    Passwords(PreparedPasswords),
    Operator(Box<PreparedOperator>),
}

fn draft_problem(p: DraftProblem) -> ApprovalRefusal {
    ApprovalRefusal::Invalid(match p {
        DraftProblem::LoginId { min, max } => InvalidField::LoginId { min, max },
        DraftProblem::Name => InvalidField::UserName,
        DraftProblem::Email => InvalidField::Email,
    })
}

fn view(r: ApprovalRequestRow, votes: Vec<ApprovalVoteRow>) -> Result<ApprovalView, ServiceError> {
    let change: ApprovalChange = serde_json::from_str(&r.data)
        .map_err(|_| ServiceError::Invariant("an approval request's data does not read back"))?;
    Ok(ApprovalView {
        id: r.id,
        kind: change.kind(),
        summary: r.summary,
        change,
        requester: r.requester,
        requested_at: r.requested_at,
        expires_at: r.expires_at,
        required: r.required,
        roles: OperatorRoles::parse(&r.roles).unwrap_or_default(),
        approvals: r.approvals,
        pending: r.state == "pending",
        state: state_label(&r.state),
        state_code: match r.state.as_str() {
            "pending" => "pending",
            "committed" => "committed",
            "rejected" => "rejected",
            "expired" => "expired",
            _ => "unknown",
        },
        version: r.version,
        decided_at: r.decided_at,
        decided_by: r.decided_by,
        votes,
    })
}

impl Shomei {
    pub(crate) fn approval_row<'a>(
        &self,
        actor: &'a str,
        op: Operation,
        target: &'a str,
        client: &'a str,
        outcome: Outcome,
        detail: &'a str,
    ) -> shomei_store::AuditEntry<'a> {
        let ctx = OperatorContext { op, target, client };
        operator_row(self, actor, ctx, outcome, detail)
    }

    /// A refusal's row alone, committed.
    pub(crate) async fn record_refusal(
        &self,
        actor: &str,
        op: Operation,
        target: &str,
        client: &str,
        r: &ApprovalRefusal,
    ) -> Result<(), ServiceError> {
        let detail = r.message_ja();
        self.record(&self.approval_row(actor, op, target, client, Outcome::Failed, &detail))
            .await?;
        Ok(())
    }

    /// The rule of every kind in force, in the table's order.
    pub async fn approval_rules(&self) -> Result<Vec<ApprovalRule>, ServiceError> {
        let stored = self.store.approval_rules().await.db()?;
        Ok(ApprovalKind::ALL
            .into_iter()
            .map(|kind| {
                let (required, roles) = kind.default_rule();
                match stored.iter().find(|r| r.kind == kind.code()) {
                    Some(r) => ApprovalRule {
                        kind,
                        required: r.required,
                        roles: OperatorRoles::parse(&r.roles).unwrap_or(roles),
                        changed: Some((r.updated_at, r.updated_by.clone())),
                    },
                    None => ApprovalRule {
                        kind,
                        required,
                        roles,
                        changed: None,
                    },
                }
            })
            .collect())
    }

    pub(crate) async fn rule_in(
        &self,
        tx: &mut Tx,
        kind: ApprovalKind,
    ) -> Result<(u32, OperatorRoles), ServiceError> {
        let (required, roles) = kind.default_rule();
        Ok(match tx.approval_rule(kind.code()).await.db()? {
            Some((n, r)) => (n, OperatorRoles::parse(&r).unwrap_or(roles)),
            None => (required, roles),
        })
    }

    /// The change's own checks against the data as it is now (at submit,
    /// and again in the committing transaction).
    pub(crate) async fn check_change(
        &self,
        tx: &mut Tx,
        change: &ApprovalChange,
    ) -> Result<(), ApprovalError> {
        match change {
            ApprovalChange::OpenCompany {
                company,
                service,
                login_id,
                name,
                email,
            } => {
                company_name(company)
                    .map_err(|_| ApprovalRefusal::Invalid(InvalidField::CompanyName))?;
                Service::from_code(service)
                    .ok_or(ApprovalRefusal::Invalid(InvalidField::Service))?;
                self.free_master_in(tx, login_id, name, email).await?;
            }
            ApprovalChange::CloseCompany { company_id, .. } => {
                company_open_in(tx, *company_id).await?;
            }
            ApprovalChange::RegisterMaster {
                company_id,
                login_id,
                name,
                email,
                ..
            } => {
                let id = company_open_in(tx, *company_id).await?;
                if tx.user_counts(id).await.db()?.1 > 0 {
                    return Err(ApprovalRefusal::MasterLeft(*company_id).into());
                }
                self.free_master_in(tx, login_id, name, email).await?;
            }
            ApprovalChange::ResetMasterPasswords {
                company_id,
                login_id,
                passwords,
                ..
            } => {
                self.check_master_reset(tx, *company_id, login_id, passwords)
                    .await?;
            }
            ApprovalChange::AddOperator { name, roles, email } => {
                let (name, _, _) = new_operator(name, roles, email)?;
                if tx.operator_by_name(&name).await.db()?.is_some() {
                    return Err(ApprovalRefusal::OperatorNameTaken(name.to_string()).into());
                }
            }
            ApprovalChange::ChangeOperatorRoles { operator, roles } => {
                roles_of(roles)?;
                let found = match OperatorName::parse(operator) {
                    Some(n) => tx.operator_by_name(&n).await.db()?,
                    None => None,
                };
                if !found.is_some_and(|o| o.active) {
                    return Err(ApprovalRefusal::NoSuchOperator(operator.clone()).into());
                }
            }
            ApprovalChange::ChangeApprovalRule {
                rule,
                required,
                roles,
            } => {
                let kind = ApprovalKind::from_code(rule)
                    .ok_or(ApprovalRefusal::Invalid(InvalidField::Rule))?;
                if !(kind.min_required()..=MAX_REQUIRED).contains(required) {
                    return Err(ApprovalRefusal::Invalid(InvalidField::Required {
                        min: kind.min_required(),
                    })
                    .into());
                }
                roles_of(roles)?;
            }
            ApprovalChange::RevokeCertificate {
                login_id, serial, ..
            } => {
                self.revocable_in(tx, login_id, serial).await?;
            }
        }
        Ok(())
    }

    /// A new マスター's fields, checked, their login ID not taken.
    async fn free_master_in(
        &self,
        tx: &mut Tx,
        login_id: &str,
        name: &str,
        email: &str,
    ) -> Result<(), ApprovalError> {
        let d = self
            .master_draft(login_id, name, email)
            .map_err(draft_problem)?;
        if tx.login_id_taken(&d.login).await.db()? {
            return Err(ApprovalRefusal::LoginIdTaken(d.login.to_string()).into());
        }
        Ok(())
    }

    /// The user and their certificate a revocation request names, still in
    /// force (発行済 or 更新可) and still their newest.
    async fn revocable_in(
        &self,
        tx: &mut Tx,
        login_id: &str,
        serial: &str,
    ) -> Result<(shomei_store::UserRow, shomei_store::CertRow), ApprovalError> {
        let no_user = || ApprovalRefusal::NoSuchUser(login_id.to_owned());
        let login = LoginId::parse(login_id).ok_or_else(no_user)?;
        let user = tx
            .user_by_login_id(&login)
            .await
            .db()?
            .ok_or_else(no_user)?;
        let cert = tx.latest_cert(user.id).await.db()?;
        let state = CertState::derive(
            cert.as_ref().map(|c| c.record()).as_ref(),
            self.now(),
            self.settings.renewal_window(),
        );
        match cert {
            Some(c)
                if c.serial.to_string() == serial
                    && matches!(state, CertState::Issued | CertState::Renewable) =>
            {
                Ok((user, c))
            }
            _ => Err(ApprovalRefusal::CertNotInForce(login_id.to_owned()).into()),
        }
    }

    /// The change's checks against the data as it is now, before anything
    /// slow is made for it; a refusal's row (of `op`) committed.
    pub(crate) async fn check_change_now(
        &self,
        change: &ApprovalChange,
        actor: &str,
        op: Operation,
        target: &str,
        client: &str,
    ) -> Result<(), ApprovalError> {
        let mut tx = self.store.begin().await.db()?;
        let checked = self.check_change(&mut tx, change).await;
        drop(tx);
        if let Err(ApprovalError::Refused(r)) = &checked {
            self.record_refusal(actor, op, target, client, r).await?;
        }
        checked
    }

    /// Submits `change` for approval: the operator holds the kind's
    /// requester role, the change passes its checks, the operator's own
    /// password is right; the request and its 承認申請 row commit together.
    pub async fn submit_approval(
        &self,
        op: &ConsoleOperator,
        change: ApprovalChange,
        password: &str,
        client: &str,
    ) -> Result<Submitted, ApprovalError> {
        let kind = change.kind();
        let actor = op.operator.name.actor();
        if !op.operator.roles.has(kind.requester_role()) {
            let r = ApprovalRefusal::NotRequesterRole(kind.requester_role());
            self.record_refusal(&actor, Operation::ApprovalSubmit, "", client, &r)
                .await?;
            return Err(r.into());
        }
        self.check_change_now(&change, &actor, Operation::ApprovalSubmit, "", client)
            .await?;
        let ctx = OperatorContext {
            op: Operation::ApprovalSubmit,
            target: "",
            client,
        };
        let (mut tx, me) = self
            .confirm_operator(op, password, ctx)
            .await
            .map_err(password_error)?;
        if !me.operator.roles.has(kind.requester_role()) {
            return Err(ApprovalRefusal::NotRequesterRole(kind.requester_role()).into());
        }
        let submitted = self
            .insert_request_in(
                &mut tx,
                &change,
                Requester::Operator(me.operator.id),
                &actor,
                client,
            )
            .await?;
        tx.commit().await.db()?;
        Ok(submitted)
    }

    /// The request for `change` and its 承認申請 row by `actor` in `tx`,
    /// under the rule of its kind as `tx` reads it.
    pub(crate) async fn insert_request_in(
        &self,
        tx: &mut Tx,
        change: &ApprovalChange,
        by: Requester<'_>,
        actor: &str,
        client: &str,
    ) -> Result<Submitted, ApprovalError> {
        let kind = change.kind();
        let summary = change.summary();
        let (required, roles) = self.rule_in(tx, kind).await?;
        let now = self.now();
        let expires_at = now + APPROVAL_LIFETIME;
        let data = serde_json::to_string(change)
            .map_err(|_| ServiceError::Invariant("an approval request does not serialize"))?;
        let (requested_by, requested_via, from) = match by {
            Requester::Operator(id) => (Some(id), None, ""),
            Requester::Shell(via) => (None, Some(via), " サーバーのシェルから"),
        };
        let id = tx
            .insert_approval_request(&NewApprovalRequest {
                kind: kind.code(),
                summary: &summary,
                data: &data,
                requested_by,
                requested_via,
                requested_at: now,
                expires_at,
                required,
                roles: &roles.codes(),
            })
            .await
            .db()?;
        let detail = format!(
            "{summary} 必要な承認: {required}名（{}）{from}",
            roles.labels()
        );
        let target = format!("申請{id}");
        self.step_row_in(
            tx,
            actor,
            Operation::ApprovalSubmit,
            &target,
            client,
            &detail,
        )
        .await?;
        Ok(Submitted {
            id,
            summary,
            required,
            roles,
            expires_at,
        })
    }

    /// A step's row of the bank's own 操作履歴 (succeeded) in `tx`.
    pub(crate) async fn step_row_in(
        &self,
        tx: &mut Tx,
        actor: &str,
        op: Operation,
        target: &str,
        client: &str,
        detail: &str,
    ) -> Result<(), ServiceError> {
        tx.audit(&self.approval_row(actor, op, target, client, Outcome::Succeeded, detail))
            .await
            .db()?;
        Ok(())
    }

    /// Expires every pending request whose time ran out by the service
    /// clock, each with its 承認期限切れ row. Returns how many.
    pub(crate) async fn expire_approvals(&self) -> Result<usize, ServiceError> {
        let now = self.now();
        let mut n = 0;
        for (id, version) in self.store.approvals_due(now).await.db()? {
            let mut tx = self.store.begin().await.db()?;
            if self.expire_in(&mut tx, id, version, now).await? {
                tx.commit().await.db()?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// Expires the request in `tx` (its row written); `false` when another
    /// step moved it first.
    async fn expire_in(
        &self,
        tx: &mut Tx,
        id: i64,
        version: i64,
        now: OffsetDateTime,
    ) -> Result<bool, ServiceError> {
        let Some(r) = tx.approval_request(id).await.db()? else {
            return Ok(false);
        };
        if !tx
            .advance_approval(id, version, r.approvals, "expired", "システム", now)
            .await
            .db()?
        {
            return Ok(false);
        }
        let target = format!("申請{id}");
        let detail = format!(
            "{}（承認 {}/{}名、期限 {}）",
            r.summary,
            r.approvals,
            r.required,
            shomei_core::format::jp_datetime(r.expires_at, self.settings.display_offset())
        );
        self.step_row_in(
            tx,
            "システム",
            Operation::ApprovalExpire,
            &target,
            "",
            &detail,
        )
        .await?;
        Ok(true)
    }

    /// Requests, newest first: the pending ones (`all` false) or every one.
    pub async fn approval_list(&self, all: bool, page: i64) -> Result<ApprovalPage, ServiceError> {
        self.expire_approvals().await?;
        let page = page.max(1);
        let (rows, total) = self
            .store
            .approval_requests(
                (!all).then_some("pending"),
                APPROVAL_PAGE_SIZE,
                (page - 1).saturating_mul(APPROVAL_PAGE_SIZE),
            )
            .await
            .db()?;
        let requests = rows
            .into_iter()
            .map(|r| view(r, Vec::new()))
            .collect::<Result<_, _>>()?;
        Ok(ApprovalPage {
            requests,
            total,
            page,
            pages: ((total + APPROVAL_PAGE_SIZE - 1) / APPROVAL_PAGE_SIZE).max(1),
        })
    }

    /// One request with its votes.
    pub async fn approval_detail(&self, id: i64) -> Result<ApprovalView, ApprovalError> {
        self.expire_approvals().await?;
        let Some(r) = self.store.approval_request(id).await.db()? else {
            return Err(ApprovalRefusal::NoSuchRequest(id).into());
        };
        let votes = self.store.approval_votes(id).await.db()?;
        Ok(view(r, votes)?)
    }

    /// Who may act on the request at all (the requester's own approval and
    /// a role outside the rule refused).
    fn may_vote(
        &self,
        op: &ConsoleOperator,
        r: &ApprovalRequestRow,
        approving: bool,
    ) -> Result<(), ApprovalRefusal> {
        let roles = OperatorRoles::parse(&r.roles).unwrap_or_default();
        let own = r.requested_by == Some(op.operator.id);
        if approving && own {
            return Err(ApprovalRefusal::OwnRequest);
        }
        // The requester may withdraw their own request.
        if !own && !roles.iter().any(|x| op.operator.roles.has(x)) {
            return Err(ApprovalRefusal::MayNotApprove(roles));
        }
        Ok(())
    }

    /// The checks every vote makes on the request as read, before and in
    /// the transaction.
    fn votable(
        &self,
        r: &ApprovalRequestRow,
        seen_version: i64,
        now: OffsetDateTime,
    ) -> Result<(), ApprovalRefusal> {
        if r.state != "pending" {
            return Err(moved_on(r));
        }
        if r.expires_at <= now {
            return Err(ApprovalRefusal::Expired);
        }
        if r.version != seen_version {
            return Err(ApprovalRefusal::Changed);
        }
        Ok(())
    }

    /// Approves request `id` as the operator saw it (`seen_version`). The
    /// approval that reaches the rule's count commits the change in the
    /// same transaction; exactly one approval does, also on two nodes at
    /// once (the compare-and-set on the request's version).
    pub async fn approve_request(
        &self,
        op: &ConsoleOperator,
        id: i64,
        seen_version: i64,
        password: &str,
        client: &str,
    ) -> Result<Approved, ApprovalError> {
        self.vote(op, id, seen_version, password, client, true)
            .await
            .map(|v| v.expect("an approval returns what it did"))
    }

    /// Rejects request `id` (as seen at `seen_version`): the request ends;
    /// nothing changes. The requester may withdraw their own this way.
    pub async fn reject_request(
        &self,
        op: &ConsoleOperator,
        id: i64,
        seen_version: i64,
        password: &str,
        client: &str,
    ) -> Result<(), ApprovalError> {
        self.vote(op, id, seen_version, password, client, false)
            .await
            .map(|_| ())
    }

    async fn vote(
        &self,
        op: &ConsoleOperator,
        id: i64,
        seen_version: i64,
        password: &str,
        client: &str,
        approving: bool,
    ) -> Result<Option<Approved>, ApprovalError> {
        self.prepare_vote(op, id, seen_version, client, approving)
            .await?
            .cast(password)
            .await
    }

    /// The first half of a vote: the request read and checked as it is
    /// now (pending at `seen_version`, the operator may vote on it), and
    /// for the approval that would commit it, what the change needs made
    /// outside a transaction. [`PendingVote::cast`] is the second half.
    /// Two nodes that both prepared a vote on one version have both seen
    /// the request pending: of their casts, one moves it.
    pub(crate) async fn prepare_vote<'a>(
        &'a self,
        op: &'a ConsoleOperator,
        id: i64,
        seen_version: i64,
        client: &'a str,
        approving: bool,
    ) -> Result<PendingVote<'a>, ApprovalError> {
        let operation = if approving {
            Operation::ApprovalApprove
        } else {
            Operation::ApprovalReject
        };
        let actor = op.operator.name.actor();
        let target = format!("申請{id}");
        self.expire_approvals().await?;
        let Some(r) = self.store.approval_request(id).await.db()? else {
            return Err(ApprovalRefusal::NoSuchRequest(id).into());
        };
        let early = self
            .may_vote(op, &r, approving)
            .and_then(|()| self.votable(&r, seen_version, self.now()));
        if let Err(refusal) = early {
            self.record_refusal(&actor, operation, &target, client, &refusal)
                .await?;
            return Err(refusal.into());
        }
        let change: ApprovalChange = serde_json::from_str(&r.data).map_err(|_| {
            ServiceError::Invariant("an approval request's data does not read back")
        })?;
        let last = approving && r.approvals + 1 >= r.required;
        let material = if last {
            self.material_for(&change).await?
        } else {
            Material::None
        };
        Ok(PendingVote {
            svc: self,
            op,
            id,
            seen_version,
            client,
            approving,
            operation,
            actor,
            target,
            change,
            material,
        })
    }
}

/// A vote prepared by `Shomei::prepare_vote`, cast with the operator's
/// password.
pub struct PendingVote<'a> {
    svc: &'a Shomei,
    op: &'a ConsoleOperator,
    id: i64,
    seen_version: i64,
    client: &'a str,
    approving: bool,
    operation: Operation,
    actor: String,
    target: String,
    change: ApprovalChange,
    material: Material,
}

impl PendingVote<'_> {
    /// The second half: the operator's password, then in one transaction
    /// the request read again, the vote, the compare-and-set on its
    /// version, the step's row and, for the last approval, the change.
    pub(crate) async fn cast(self, password: &str) -> Result<Option<Approved>, ApprovalError> {
        let PendingVote {
            svc,
            op,
            id,
            seen_version,
            client,
            approving,
            operation,
            actor,
            target,
            change,
            material,
        } = self;
        svc.cast_vote(
            op,
            (id, seen_version),
            (client, approving, operation),
            (&actor, &target),
            change,
            material,
            password,
        )
        .await
    }
}

impl Shomei {
    #[allow(clippy::too_many_arguments)]
    async fn cast_vote(
        &self,
        op: &ConsoleOperator,
        (id, seen_version): (i64, i64),
        (client, approving, operation): (&str, bool, Operation),
        (actor, target): (&str, &str),
        change: ApprovalChange,
        material: Material,
        password: &str,
    ) -> Result<Option<Approved>, ApprovalError> {
        let (actor, target) = (actor.to_owned(), target.to_owned());
        let ctx = OperatorContext {
            op: operation,
            target: &target,
            client,
        };
        let (mut tx, me) = self
            .confirm_operator(op, password, ctx)
            .await
            .map_err(password_error)?;
        let now = self.now();
        // As the transaction sees it now.
        let Some(r) = tx.approval_request(id).await.db()? else {
            return Err(ApprovalRefusal::NoSuchRequest(id).into());
        };
        self.pauses
            .at(crate::pause::PausePoint::InTransaction(operation))
            .await;
        let current = ConsoleOperator {
            confirm_hash: me.operator.confirm_hash.clone(),
            operator: me.operator.clone().into(),
            serial: op.serial.clone(),
            not_after: op.not_after,
        };
        if let Err(refusal) = self.may_vote(&current, &r, approving) {
            drop(tx);
            self.record_refusal(&actor, operation, &target, client, &refusal)
                .await?;
            return Err(refusal.into());
        }
        match self.votable(&r, seen_version, now) {
            Ok(()) => {}
            Err(ApprovalRefusal::Expired) => {
                // Expired meanwhile: the expiry is this transaction's step.
                self.expire_in(&mut tx, id, r.version, now).await?;
                tx.commit().await.db()?;
                return Err(ApprovalRefusal::Expired.into());
            }
            Err(refusal) => {
                drop(tx);
                self.record_refusal(&actor, operation, &target, client, &refusal)
                    .await?;
                return Err(refusal.into());
            }
        }
        let vote = if approving { "approve" } else { "reject" };
        if !tx
            .add_approval_vote(id, me.operator.id, vote, now)
            .await
            .db()?
        {
            drop(tx);
            let refusal = ApprovalRefusal::AlreadyVoted;
            self.record_refusal(&actor, operation, &target, client, &refusal)
                .await?;
            return Err(refusal.into());
        }
        let approvals = r.approvals + u32::from(approving);
        let commits = approving && approvals >= r.required;
        let state = match (approving, commits) {
            (false, _) => "rejected",
            (true, true) => "committed",
            (true, false) => "pending",
        };
        if !tx
            .advance_approval(
                id,
                r.version,
                approvals,
                state,
                me.operator.name.as_str(),
                now,
            )
            .await
            .db()?
        {
            // Another node's step came first (PostgreSQL: this UPDATE
            // waited for its row lock, then found the request moved): this
            // vote is rolled back, and the operator told what became of
            // the request, as this statement's snapshot shows it.
            let refusal = match tx.approval_request(id).await.db()? {
                Some(now_) => moved_on(&now_),
                None => ApprovalRefusal::NoSuchRequest(id),
            };
            drop(tx);
            self.record_refusal(&actor, operation, &target, client, &refusal)
                .await?;
            return Err(refusal.into());
        }
        let detail = if !approving && r.requested_by == Some(me.operator.id) {
            format!("{}（申請者による取り下げ）", r.summary)
        } else {
            format!("{}（承認 {approvals}/{}名）", r.summary, r.required)
        };
        self.step_row_in(&mut tx, &actor, operation, &target, client, &detail)
            .await?;
        if !approving {
            tx.commit().await.db()?;
            return Ok(None);
        }
        if !commits {
            tx.commit().await.db()?;
            return Ok(Some(Approved::Waiting {
                id,
                approvals,
                required: r.required,
            }));
        }
        if let Err(e) = self.check_change(&mut tx, &change).await {
            // The data moved since the submit (a login ID taken, the
            // company closed): nothing commits; the request waits.
            drop(tx);
            if let ApprovalError::Refused(refusal) = &e {
                self.record_refusal(&actor, Operation::ApprovalCommit, &target, client, refusal)
                    .await?;
            }
            return Err(e);
        }
        let (applied, revoked) = self
            .apply_in(&mut tx, &change, material, &actor, client, now)
            .await?;
        let detail = format!("{}（申請者 {}）", r.summary, r.requester);
        self.step_row_in(
            &mut tx,
            &actor,
            Operation::ApprovalCommit,
            &target,
            client,
            &detail,
        )
        .await?;
        // A closed company's revocations are in force here once this
        // commits (other servers from the revocation log).
        revoked.commit(self, tx).await?;
        Ok(Some(Approved::Committed { id, applied }))
    }

    /// The change itself, in the transaction of its last approval (or of a
    /// break-glass); the change's own 操作履歴 rows written.
    pub(crate) async fn apply_in(
        &self,
        tx: &mut Tx,
        change: &ApprovalChange,
        material: Material,
        actor: &str,
        client: &str,
        now: OffsetDateTime,
    ) -> Result<(Applied, PendingRevocation), ApprovalError> {
        let by = By { actor, client, now };
        let applied = match change {
            ApprovalChange::OpenCompany {
                company,
                service,
                login_id,
                name,
                email,
            } => {
                let service = Service::from_code(service)
                    .ok_or(ApprovalRefusal::Invalid(InvalidField::Service))?;
                let d = self
                    .master_draft(login_id, name, email)
                    .map_err(draft_problem)?;
                self.open_company_in(tx, company, service, &d, material, by)
                    .await?
            }
            ApprovalChange::RegisterMaster {
                company_id,
                company,
                login_id,
                name,
                email,
            } => {
                let d: MasterDraft = self
                    .master_draft(login_id, name, email)
                    .map_err(draft_problem)?;
                let id = CompanyId(*company_id);
                self.register_master_in(tx, id, company, &d, material, by)
                    .await?
            }
            ApprovalChange::ResetMasterPasswords {
                company,
                login_id,
                passwords: which,
                ..
            } => {
                let p = passwords_of(material)?;
                let done = self
                    .reset_master_in(tx, login_id, which, p, actor, client)
                    .await?;
                let company = company.clone();
                Applied::MasterPasswordsReset { company, done }
            }
            ApprovalChange::CloseCompany {
                company_id,
                company,
            } => return self.close_in(tx, *company_id, company, by).await,
            ApprovalChange::AddOperator { email, .. } => {
                self.add_operator_in(tx, email, material, by).await?
            }
            ApprovalChange::ChangeOperatorRoles { operator, roles } => {
                self.change_roles_in(tx, operator, roles, by).await?
            }
            ApprovalChange::ChangeApprovalRule {
                rule,
                required,
                roles,
            } => self.change_rule_in(tx, rule, *required, roles, by).await?,
            ApprovalChange::RevokeCertificate {
                company,
                login_id,
                serial,
                reason,
                invalidity,
                caller,
                ..
            } => {
                let (user, cert) = self.revocable_in(tx, login_id, serial).await?;
                let request = phone_request(*reason, *invalidity, caller)?;
                let revoked = self
                    .phone_revoke_in(tx, &user, &cert, &request, actor, client, now)
                    .await?
                    .ok_or_else(|| ApprovalRefusal::CertNotInForce(login_id.clone()))?;
                let applied = Applied::CertificateRevoked {
                    company: company.clone(),
                    login_id: login_id.clone(),
                    serial: serial.clone(),
                };
                return Ok((applied, revoked));
            }
        };
        // Only closing a company and a revocation revoke anything.
        Ok((applied, PendingRevocation::default()))
    }

    /// A new company with its first マスター (the service and the マスター's
    /// fields checked already): the company's name checked, both created.
    async fn open_company_in(
        &self,
        tx: &mut Tx,
        company: &str,
        service: Service,
        d: &MasterDraft,
        material: Material,
        by: By<'_>,
    ) -> Result<Applied, ApprovalError> {
        let name = company_name(company)
            .map_err(|_| ApprovalRefusal::Invalid(InvalidField::CompanyName))?;
        let id = self
            .create_company_in(tx, name, service, by.actor, by.client)
            .await
            .map_err(operator_error)?;
        let (login_id, passwords) = self
            .master_in(tx, id, d, passwords_of(material)?, by.actor, by.client)
            .await?;
        Ok(Applied::CompanyOpened {
            company_id: id,
            company: name.to_owned(),
            login_id,
            passwords,
        })
    }

    /// A new マスター for a company that has none left (the fields checked
    /// already), with the prepared passwords.
    async fn register_master_in(
        &self,
        tx: &mut Tx,
        id: CompanyId,
        company: &str,
        d: &MasterDraft,
        material: Material,
        by: By<'_>,
    ) -> Result<Applied, ApprovalError> {
        let (login_id, passwords) = self
            .master_in(tx, id, d, passwords_of(material)?, by.actor, by.client)
            .await?;
        Ok(Applied::MasterRegistered {
            company_id: id,
            company: company.to_owned(),
            login_id,
            passwords,
        })
    }

    /// 解約: the company's users stopped, its certificates revoked (each
    /// with its row), the company closed and its row written.
    async fn close_in(
        &self,
        tx: &mut Tx,
        company_id: i64,
        company: &str,
        by: By<'_>,
    ) -> Result<(Applied, PendingRevocation), ApprovalError> {
        let id = CompanyId(company_id);
        let stopped = stop_users_in(tx, id).await?;
        let (count, revoked) = self.revoke_company_certs_in(tx, id, by).await?;
        if !tx.close_company(id, by.actor, by.now).await.db()? {
            return Err(ApprovalRefusal::CompanyClosed(company_id).into());
        }
        let detail = format!("{company} 利用者 {stopped}名を利用停止、電子証明書 {count}件を失効");
        tx.audit(
            &self
                .entry(Operation::CompanyClose)
                .by_name(Some(id), by.actor)
                .detail(&detail)
                .client(by.client),
        )
        .await
        .db()?;
        let applied = Applied::CompanyClosed {
            company_id: id,
            company: company.to_owned(),
            users_stopped: stopped,
            certificates_revoked: count,
        };
        Ok((applied, revoked))
    }

    /// Every certificate in force of a closing company revoked
    /// (cessationOfOperation), each with its 操作履歴 row: how many, and
    /// the revocations to put in force at the commit.
    async fn revoke_company_certs_in(
        &self,
        tx: &mut Tx,
        id: CompanyId,
        by: By<'_>,
    ) -> Result<(usize, PendingRevocation), ApprovalError> {
        let mut revoked = PendingRevocation::default();
        let mut count = 0;
        for c in tx.company_unrevoked_certs(id).await.db()? {
            let Some(r) = self
                .revoke_in(tx, &c.cert, by.now, REASON_CESSATION, None)
                .await?
            else {
                continue;
            };
            revoked = revoked.and(r);
            count += 1;
            let detail = format!(
                "企業解約による失効: シリアル番号 {}（理由 {REASON_CESSATION}）",
                c.cert.serial
            );
            tx.audit(
                &self
                    .entry(Operation::CertificateRevocation)
                    .by_name(Some(id), by.actor)
                    .target(&c.login_id)
                    .detail(&detail)
                    .client(by.client),
            )
            .await
            .db()?;
        }
        Ok((count, revoked))
    }

    /// The operator prepared for the request added (its e-mail address
    /// checked), its rows written.
    async fn add_operator_in(
        &self,
        tx: &mut Tx,
        email: &str,
        material: Material,
        by: By<'_>,
    ) -> Result<Applied, ApprovalError> {
        let Material::Operator(p) = material else {
            return Err(ServiceError::Invariant("a new operator was not prepared").into());
        };
        let email = operator_email(email).ok_or(ApprovalRefusal::Invalid(InvalidField::Email))?;
        let added = self
            .insert_operator_in(tx, *p, email, by.actor, by.client)
            .await
            .map_err(|e| match e {
                OperatorAdminError::NameTaken(n) => ApprovalRefusal::OperatorNameTaken(n).into(),
                OperatorAdminError::Internal(e) => ApprovalError::Internal(e),
                _ => ApprovalError::Internal(ServiceError::Invariant(
                    "a checked new operator was refused by its use case",
                )),
            })?;
        Ok(Applied::OperatorAdded(added))
    }

    /// An operator's roles replaced by `roles` (codes), with the row.
    async fn change_roles_in(
        &self,
        tx: &mut Tx,
        operator: &str,
        roles: &str,
        by: By<'_>,
    ) -> Result<Applied, ApprovalError> {
        let roles = roles_of(roles)?;
        let name = OperatorName::parse(operator)
            .ok_or_else(|| ApprovalRefusal::NoSuchOperator(operator.to_owned()))?;
        let Some(o) = tx.operator_by_name(&name).await.db()? else {
            return Err(ApprovalRefusal::NoSuchOperator(operator.to_owned()).into());
        };
        tx.set_operator_roles(o.id, &roles).await.db()?;
        let detail = format!("役割: {} → {}", o.roles.labels(), roles.labels());
        self.step_row_in(
            tx,
            by.actor,
            Operation::OperatorRoleChange,
            name.as_str(),
            by.client,
            &detail,
        )
        .await?;
        Ok(Applied::RolesChanged {
            operator: name.to_string(),
            roles,
        })
    }

    /// A rule of the approval table set, with the row.
    async fn change_rule_in(
        &self,
        tx: &mut Tx,
        rule: &str,
        required: u32,
        roles: &str,
        by: By<'_>,
    ) -> Result<Applied, ApprovalError> {
        let kind =
            ApprovalKind::from_code(rule).ok_or(ApprovalRefusal::Invalid(InvalidField::Rule))?;
        let roles = roles_of(roles)?;
        tx.set_approval_rule(kind.code(), required, &roles.codes(), by.actor, by.now)
            .await
            .db()?;
        let detail = format!(
            "{}: 必要な承認 {required}名（{}）",
            kind.label(),
            roles.labels()
        );
        self.step_row_in(
            tx,
            by.actor,
            Operation::ApprovalRuleChange,
            kind.code(),
            by.client,
            &detail,
        )
        .await?;
        Ok(Applied::RuleChanged(ApprovalRule {
            kind,
            required,
            roles,
            changed: Some((by.now, by.actor.to_owned())),
        }))
    }

    /// A company's new マスター with the prepared passwords, its rows
    /// written: their login ID and the one-time passwords to hand over.
    async fn master_in(
        &self,
        tx: &mut Tx,
        company: CompanyId,
        d: &MasterDraft,
        p: PreparedPasswords,
        actor: &str,
        client: &str,
    ) -> Result<(String, TemporaryPasswords), ApprovalError> {
        self.create_master_in(tx, company, d, &p, actor, client)
            .await
            .map_err(operator_error)?;
        Ok((d.login.to_string(), p.temp))
    }
}

impl Shomei {
    /// What committing `change` needs made outside a transaction: new
    /// passwords hashed, a new operator's key and certificate.
    pub(crate) async fn material_for(
        &self,
        change: &ApprovalChange,
    ) -> Result<Material, ApprovalError> {
        Ok(match change {
            ApprovalChange::OpenCompany { .. }
            | ApprovalChange::RegisterMaster { .. }
            | ApprovalChange::ResetMasterPasswords { .. } => {
                Material::Passwords(self.prepared_passwords().await?)
            }
            ApprovalChange::AddOperator { name, roles, email } => {
                let (name, roles, _) = new_operator(name, roles, email)?;
                Material::Operator(Box::new(self.prepare_operator(&name, &roles).await?))
            }
            _ => Material::None,
        })
    }
}

/// The company a change names, there and not closed.
async fn company_open_in(tx: &mut Tx, company_id: i64) -> Result<CompanyId, ApprovalError> {
    let id = CompanyId(company_id);
    if tx.company(id).await.db()?.is_none() {
        return Err(ApprovalRefusal::NoSuchCompany(company_id).into());
    }
    if tx.company_closed(id).await.db()? {
        return Err(ApprovalRefusal::CompanyClosed(company_id).into());
    }
    Ok(id)
}

/// Who commits a change, from where, and when: what its rows carry.
#[derive(Clone, Copy)]
struct By<'a> {
    actor: &'a str,
    client: &'a str,
    now: OffsetDateTime,
}

/// The passwords prepared for a change that makes or resets a マスター.
fn passwords_of(m: Material) -> Result<PreparedPasswords, ServiceError> {
    match m {
        Material::Passwords(p) => Ok(p),
        _ => Err(ServiceError::Invariant(
            "a マスター's passwords were not prepared",
        )),
    }
}

/// The phone request a stored revocation names: its CRL reason code read
/// back, its invalidity date (Unix seconds) as a time.
fn phone_request(
    reason: u8,
    invalidity: Option<i64>,
    caller: &str,
) -> Result<PhoneRequest<'_>, ApprovalRefusal> {
    let reason = RevocationReason::from_code(reason)
        .ok_or(ApprovalRefusal::Invalid(InvalidField::Reason))?;
    Ok(PhoneRequest {
        reason,
        invalidity: invalidity.and_then(|t| OffsetDateTime::from_unix_timestamp(t).ok()),
        caller,
    })
}

/// A closing company's users stopped (利用停止): how many.
async fn stop_users_in(tx: &mut Tx, id: CompanyId) -> Result<usize, ApprovalError> {
    let mut stopped = 0;
    for uid in tx.company_user_ids(id).await.db()? {
        if let Some(mut u) = tx.user(uid).await.db()? {
            u.counters.admin_stopped = true;
            tx.save_counters(u.id, &u.counters).await.db()?;
            stopped += 1;
        }
    }
    Ok(stopped)
}

/// Role codes a change names, read back.
fn roles_of(codes: &str) -> Result<OperatorRoles, ApprovalRefusal> {
    OperatorRoles::parse(codes).ok_or(ApprovalRefusal::Invalid(InvalidField::Roles))
}

/// A new operator's fields, checked (their refusals as the console shows
/// them).
fn new_operator<'a>(
    name: &str,
    roles: &str,
    email: &'a str,
) -> Result<(OperatorName, OperatorRoles, &'a str), ApprovalRefusal> {
    operator_fields(name, roles, email).map_err(|e| {
        ApprovalRefusal::Invalid(match e {
            OperatorAdminError::BadRoles(_) => InvalidField::Roles,
            OperatorAdminError::BadEmail(_) => InvalidField::Email,
            _ => InvalidField::OperatorName,
        })
    })
}

fn password_error(e: ActionError) -> ApprovalError {
    match e {
        ActionError::Refused(m) => ApprovalError::Password(m),
        ActionError::Internal(e) => ApprovalError::Internal(e),
    }
}

fn operator_error(e: OperatorError) -> ApprovalError {
    match e {
        OperatorError::LoginIdTaken(l) => ApprovalRefusal::LoginIdTaken(l).into(),
        OperatorError::NoSuchCompany(c) => ApprovalRefusal::NoSuchCompany(c).into(),
        OperatorError::Internal(e) => ApprovalError::Internal(e),
        OperatorError::NoSuchUser(_)
        | OperatorError::Invalid(_)
        | OperatorError::MasterNeedsApproval(_) => {
            ApprovalError::Internal(ServiceError::Invariant(
                "a change checked before its commit was refused by its use case",
            ))
        }
    }
}

/// The console's message for an operator without the 業務管理者 role.
pub const NOT_BUSINESS_ADMIN: &str = "この操作は業務管理者の役割を持つオペレーターだけが行えます。";

/// A company as the 業務管理者 sees it.
#[derive(Debug, Clone)]
pub struct BusinessCompany {
    /// The company's id.
    pub id: CompanyId,
    /// Its name.
    pub name: String,
    /// Its contracted service.
    pub service: Service,
    /// Its users (not deleted).
    pub users: i64,
    /// Its マスター users: a new one is registered only when none is left.
    pub masters: i64,
    /// When it was opened.
    pub created_at: OffsetDateTime,
    /// When the bank closed it, if it did.
    pub closed_at: Option<OffsetDateTime>,
}

impl Shomei {
    /// Every company (業務管理者 only; a refusal otherwise, its row
    /// written), with whether the bank closed it.
    pub async fn business_companies(
        &self,
        op: &ConsoleOperator,
        client: &str,
    ) -> Result<Vec<BusinessCompany>, ActionError> {
        self.require_operator_role(
            op,
            OperatorRole::BusinessAdmin,
            Operation::ApprovalSubmit,
            NOT_BUSINESS_ADMIN,
            client,
        )
        .await?;
        let closed = self.store.company_closures().await.db()?;
        Ok(self
            .store
            .companies()
            .await
            .db()?
            .into_iter()
            .map(|c| BusinessCompany {
                closed_at: closed.iter().find(|(id, _)| *id == c.id).map(|(_, t)| *t),
                id: c.id,
                name: c.name,
                service: c.service,
                users: c.users,
                masters: c.masters,
                created_at: c.created_at,
            })
            .collect())
    }
}

/// The console's message for an operator without the 運用管理者 role.
pub const NOT_OPERATIONS_ADMIN: &str =
    "この操作は運用管理者の役割を持つオペレーターだけが行えます。";

impl Shomei {
    /// Every operator with their newest certificate (運用管理者 only; a
    /// refusal otherwise, its row written).
    pub async fn operations_operators(
        &self,
        op: &ConsoleOperator,
        client: &str,
    ) -> Result<Vec<crate::OperatorListRow>, ActionError> {
        self.require_operator_role(
            op,
            OperatorRole::OperationsAdmin,
            Operation::ApprovalSubmit,
            NOT_OPERATIONS_ADMIN,
            client,
        )
        .await?;
        self.operator_list().await.map_err(|e| match e {
            crate::OperatorAdminError::Internal(e) => ActionError::Internal(e),
            _ => ActionError::Internal(ServiceError::Invariant(
                "listing operators refused for another reason than the store",
            )),
        })
    }
}
