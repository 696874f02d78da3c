//! The bank operator's tasks (the `shomei` CLI on the server): companies,
//! their マスター users, unlocking and resetting passwords. Each writes its
//! 操作履歴 row, by `銀行:<operator>`, in the same transaction as the change.

use crate::Db as _;
use shomei_core::Operation;
use shomei_core::records::CompanySummary;
use shomei_core::{CompanyId, LoginId, Role, Service};
use shomei_store::{AuditEntry, NewUser};

use crate::operations::company_service::ServiceRefusal;
use crate::{ServiceError, Shomei};

/// Why the operator's command did nothing (English: CLI and logs).
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    /// No user has this login ID.
    #[error("no user with login ID {0}")]
    NoSuchUser(String),
    /// No company has this id.
    #[error("no company with id {0}")]
    NoSuchCompany(i64),
    /// Another user (of any company) has this login ID.
    #[error("login ID {0} is already taken (login IDs are unique across the bank)")]
    LoginIdTaken(String),
    /// A field does not fit the rules (the message says which).
    #[error("{0}")]
    Invalid(String),
    /// The user is a マスター: the reset needs approval.
    #[error(
        "user {0} is a マスター: resetting a マスター's passwords needs another operator's approval (the command submits it; --break-glass commits at once)"
    )]
    MasterNeedsApproval(String),
    /// Our own trouble, not the operator's.
    #[error(transparent)]
    Internal(#[from] ServiceError),
}

impl From<crate::DatabaseError> for OperatorError {
    fn from(e: crate::DatabaseError) -> Self {
        Self::Internal(e.into())
    }
}

/// Temporary passwords handed to a user by the bank; both must be changed
/// at the first login.
#[derive(Debug, Clone)]
pub struct TemporaryPasswords {
    /// The temporary ログインパスワード.
    pub login: String,
    /// The temporary 確認用パスワード.
    pub confirm: String,
}

/// A new マスター's checked login ID, name and e-mail.
#[derive(Debug, Clone)]
pub(crate) struct MasterDraft {
    pub login: LoginId,
    pub name: String,
    pub email: String,
}

/// Which check of a new マスター failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DraftProblem {
    LoginId { min: usize, max: usize },
    Name,
    Email,
}

impl DraftProblem {
    fn english(self, login_id: &str, email: &str) -> String {
        match self {
            DraftProblem::LoginId { min, max } => {
                format!("invalid login ID {login_id:?}: {min}-{max} half-width letters and digits")
            }
            DraftProblem::Name => {
                "the user name must be 1-40 characters without control characters".into()
            }
            DraftProblem::Email => format!("invalid e-mail address {email:?}"),
        }
    }
}

/// Temporary passwords with their hashes, ready to be stored.
pub(crate) struct PreparedPasswords {
    pub temp: TemporaryPasswords,
    pub login_hash: String,
    pub confirm_hash: String,
}

/// A company name: 1-60 characters without control characters.
pub(crate) fn company_name(name: &str) -> Result<&str, OperatorError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 60 || name.chars().any(char::is_control) {
        return Err(OperatorError::Invalid(
            "the company name must be 1-60 characters without control characters".into(),
        ));
    }
    Ok(name)
}

/// 12 letters and digits, both present (the default policy accepts it).
pub(crate) fn temporary_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    loop {
        let p: String = (0..12)
            .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
            .collect();
        if p.chars().any(|c| c.is_ascii_digit()) && p.chars().any(|c| c.is_ascii_alphabetic()) {
            return p;
        }
    }
}

impl Shomei {
    fn operator_entry<'a>(
        &self,
        actor: &'a str,
        company: CompanyId,
        operation: Operation,
        target: &'a str,
        detail: &'a str,
    ) -> AuditEntry<'a> {
        self.entry(operation)
            .by_name(Some(company), actor)
            .target(target)
            .detail(detail)
            .client("operator-cli")
    }

    /// `shomei company create`.
    pub async fn operator_create_company(
        &self,
        name: &str,
        service: Service,
        operator: &str,
    ) -> Result<CompanyId, OperatorError> {
        let name = company_name(name)?;
        let actor = format!("銀行:{operator}");
        let mut tx = self.store.begin().await.db()?;
        let id = self
            .create_company_in(&mut tx, name, service, &actor, "operator-cli")
            .await?;
        tx.commit().await.db()?;
        Ok(id)
    }

    /// A company and its 企業登録 row in `tx` (the CLI's command and an
    /// approved request both come here).
    pub(crate) async fn create_company_in(
        &self,
        tx: &mut shomei_store::Tx,
        name: &str,
        service: Service,
        actor: &str,
        client: &str,
    ) -> Result<CompanyId, OperatorError> {
        let id = tx.insert_company(name, service, self.now()).await.db()?;
        let detail = format!("{name}（{}）", service.label());
        tx.audit(
            &self
                .operator_entry(actor, id, Operation::CompanyCreate, "", &detail)
                .client(client),
        )
        .await
        .db()?;
        Ok(id)
    }

    /// `shomei company set-service` (the checks and the row:
    /// `Shomei::set_service_in`, as the console's OPR025).
    pub async fn operator_set_service(
        &self,
        company: CompanyId,
        service: Service,
        operator: &str,
    ) -> Result<(), OperatorError> {
        let actor = format!("銀行:{operator}");
        let mut tx = self.store.begin().await.db()?;
        match self
            .set_service_in(&mut tx, company, service, &actor, "operator-cli")
            .await?
        {
            Ok(_) => {
                tx.commit().await.db()?;
                Ok(())
            }
            Err(ServiceRefusal::NoSuchCompany) => Err(OperatorError::NoSuchCompany(company.0)),
            Err(r) => Err(OperatorError::Invalid(r.english(company))),
        }
    }

    /// `shomei company show`: the company and its users.
    pub async fn operator_company(
        &self,
        company: CompanyId,
    ) -> Result<(CompanySummary, Vec<crate::User>), OperatorError> {
        let Some(c) = self
            .store
            .companies()
            .await
            .db()?
            .into_iter()
            .find(|c| c.id == company)
        else {
            return Err(OperatorError::NoSuchCompany(company.0));
        };
        let users = self
            .store
            .users_with_latest_cert(company)
            .await
            .db()?
            .into_iter()
            .map(|(u, _)| u.into())
            .collect();
        Ok((c, users))
    }

    /// `shomei user create-master`: a マスター user with temporary passwords.
    pub async fn operator_create_master(
        &self,
        company: CompanyId,
        login_id: &str,
        name: &str,
        email: &str,
        operator: &str,
    ) -> Result<TemporaryPasswords, OperatorError> {
        let draft = self
            .master_draft(login_id, name, email)
            .map_err(|p| OperatorError::Invalid(p.english(login_id, email)))?;
        let passwords = self.prepared_passwords().await?;
        let actor = format!("銀行:{operator}");
        let mut tx = self.store.begin().await.db()?;
        if tx.company(company).await.db()?.is_none() {
            return Err(OperatorError::NoSuchCompany(company.0));
        }
        self.create_master_in(&mut tx, company, &draft, &passwords, &actor, "operator-cli")
            .await?;
        tx.commit().await.db()?;
        Ok(passwords.temp)
    }

    /// The checks of a new マスター's login ID, name and e-mail.
    pub(crate) fn master_draft(
        &self,
        login_id: &str,
        name: &str,
        email: &str,
    ) -> Result<MasterDraft, DraftProblem> {
        let (min, max) = (
            self.settings.login_id_min_length,
            self.settings.login_id_max_length,
        );
        let Some(login) = LoginId::parse(login_id).filter(|id| id.fits(min, max)) else {
            return Err(DraftProblem::LoginId { min, max });
        };
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 40 || name.chars().any(char::is_control) {
            return Err(DraftProblem::Name);
        }
        let email = email.trim();
        if email.len() > 254 || (!email.is_empty() && !email.contains('@')) {
            return Err(DraftProblem::Email);
        }
        Ok(MasterDraft {
            login,
            name: name.to_owned(),
            email: email.to_owned(),
        })
    }

    /// Two temporary passwords and their hashes, made outside any
    /// transaction (the hashing is slow).
    pub(crate) async fn prepared_passwords(&self) -> Result<PreparedPasswords, ServiceError> {
        let temp = TemporaryPasswords {
            login: temporary_password(),
            confirm: temporary_password(),
        };
        let login_hash = self.hasher.hash(&temp.login).await?;
        let confirm_hash = self.hasher.hash(&temp.confirm).await?;
        Ok(PreparedPasswords {
            temp,
            login_hash,
            confirm_hash,
        })
    }

    /// The マスター and its 利用者登録 row in `tx`; the caller has found
    /// the company.
    pub(crate) async fn create_master_in(
        &self,
        tx: &mut shomei_store::Tx,
        company: CompanyId,
        m: &MasterDraft,
        p: &PreparedPasswords,
        actor: &str,
        client: &str,
    ) -> Result<(), OperatorError> {
        if tx.user_by_login_id(&m.login).await.db()?.is_some() {
            return Err(OperatorError::LoginIdTaken(m.login.to_string()));
        }
        let id = tx
            .insert_user(
                &NewUser {
                    company_id: company,
                    login_id: &m.login,
                    name: &m.name,
                    role: Role::Master,
                    email: &m.email,
                    login_hash: &p.login_hash,
                    confirm_hash: &p.confirm_hash,
                },
                self.now(),
            )
            .await
            .db()?;
        tx.reset_passwords(id, &p.login_hash, &p.confirm_hash, true)
            .await
            .db()?;
        tx.audit(
            &self
                .operator_entry(
                    actor,
                    company,
                    Operation::UserCreate,
                    m.login.as_str(),
                    "マスターユーザ",
                )
                .client(client),
        )
        .await
        .db()?;
        Ok(())
    }

    /// `shomei user unlock`: releases the password locks and the stop (a
    /// マスター who locked themselves out phones the bank).
    pub async fn operator_unlock(
        &self,
        login_id: &LoginId,
        operator: &str,
    ) -> Result<(), OperatorError> {
        let actor = format!("銀行:{operator}");
        let mut tx = self.store.begin().await.db()?;
        let Some(mut u) = tx.user_by_login_id(login_id).await.db()? else {
            return Err(OperatorError::NoSuchUser(login_id.to_string()));
        };
        let before: Vec<&str> = u
            .counters
            .service_states(self.now())
            .iter()
            .map(|s| s.label())
            .collect();
        u.counters.release_all();
        tx.save_counters(u.id, &u.counters).await.db()?;
        let detail = format!("解除前: {}", before.join("、"));
        tx.audit(&self.operator_entry(
            &actor,
            u.company_id,
            Operation::Unlock,
            login_id.as_str(),
            &detail,
        ))
        .await
        .db()?;
        tx.commit().await.db()?;
        Ok(())
    }

    /// `shomei user reset-password`: new temporary login and confirmation
    /// passwords, to be changed at the next login; locks released.
    pub async fn operator_reset_passwords(
        &self,
        login_id: &LoginId,
        operator: &str,
    ) -> Result<TemporaryPasswords, OperatorError> {
        let temp = TemporaryPasswords {
            login: temporary_password(),
            confirm: temporary_password(),
        };
        let login_hash = self.hasher.hash(&temp.login).await?;
        let confirm_hash = self.hasher.hash(&temp.confirm).await?;
        let actor = format!("銀行:{operator}");
        let mut tx = self.store.begin().await.db()?;
        let Some(mut u) = tx.user_by_login_id(login_id).await.db()? else {
            return Err(OperatorError::NoSuchUser(login_id.to_string()));
        };
        if u.role == Role::Master {
            return Err(OperatorError::MasterNeedsApproval(login_id.to_string()));
        }
        tx.reset_passwords(u.id, &login_hash, &confirm_hash, true)
            .await
            .db()?;
        u.counters.login_failures = 0;
        u.counters.login_locked_until = None;
        u.counters.login_stopped = false;
        u.counters.confirm_failures = 0;
        u.counters.confirm_stopped = false;
        tx.save_counters(u.id, &u.counters).await.db()?;
        tx.audit(&self.operator_entry(
            &actor,
            u.company_id,
            Operation::PasswordReset,
            login_id.as_str(),
            "ログインパスワード・確認用パスワード",
        ))
        .await
        .db()?;
        tx.commit().await.db()?;
        Ok(temp)
    }
}
