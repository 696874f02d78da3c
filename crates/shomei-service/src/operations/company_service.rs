//! A company's contracted service and the limits that come with it (how
//! many users the company may register: `business_ib_max_users`,
//! `hottokun_webjr_max_users`), changed by the bank: `shomei company
//! set-service` on the server's shell and the 業務管理者's OPR025 in the
//! console. Both come to [`Shomei::set_service_in`], which checks the
//! company (there, not closed, its users within the new service's limit)
//! and writes the change with its 契約サービス変更 row in the caller's
//! transaction. The console's path asks the 業務管理者 role and the
//! operator's own password first; the change is not under approval (no
//! rule names it).

use crate::Db as _;
use shomei_core::{CompanyId, Operation, OperatorRole, Outcome, Service};
use shomei_store::Tx;
use time::OffsetDateTime;

use crate::operations::approvals::NOT_BUSINESS_ADMIN;
use crate::operations::console_access::OperatorContext;
use crate::operations::operators::ConsoleOperator;
use crate::{ActionError, ServiceError, Shomei};

/// The console's message when the company chosen is not there.
pub const NO_SUCH_COMPANY: &str = "指定された企業は見つかりません。";
/// The console's message for a company the bank closed.
pub(crate) const COMPANY_CLOSED: &str = "この企業はすでに解約されています。";
/// The console's message for the service the company has already.
pub const SAME_SERVICE: &str =
    "現在と同じ契約サービスです。変更後の契約サービスを選択してください。";
/// The console's message for no service (or an unknown one) chosen.
pub(crate) const CHOOSE_SERVICE: &str = "変更後の契約サービスを選択してください。";

/// A service and the limit that comes with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServiceLimits {
    /// The contracted service.
    pub service: Service,
    /// Users the company may register under this service.
    pub max_users: i64,
}

/// A company's service and limits as the 業務管理者 sees them (OPR025).
#[derive(Debug, Clone)]
pub struct CompanyServices {
    /// The company's id.
    pub id: CompanyId,
    /// The company's name.
    pub name: String,
    /// Its service now, with its limit.
    pub current: ServiceLimits,
    /// Users registered now.
    pub users: i64,
    /// Every service the bank offers, with its limits.
    pub offered: Vec<ServiceLimits>,
}

/// What a change did (OPR026).
#[derive(Debug, Clone)]
pub struct ServiceChanged {
    /// The company's id.
    pub id: CompanyId,
    /// The company's name.
    pub name: String,
    /// The service it had.
    pub before: ServiceLimits,
    /// The service it has now.
    pub after: ServiceLimits,
    /// Users registered at the change.
    pub users: i64,
    /// When it was changed.
    pub at: OffsetDateTime,
}

/// Why a company's service was not changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ServiceRefusal {
    NoSuchCompany,
    Closed,
    /// The company has more users than the new service allows.
    OverLimit {
        users: i64,
        limit: ServiceLimits,
    },
}

impl ServiceRefusal {
    pub(crate) fn message_ja(&self) -> String {
        match self {
            ServiceRefusal::NoSuchCompany => NO_SUCH_COMPANY.into(),
            ServiceRefusal::Closed => COMPANY_CLOSED.into(),
            ServiceRefusal::OverLimit { users, limit } => format!(
                "{}で登録できる利用者は{}人までです。この企業の利用者（{users}人）を{}人以下にしてから変更してください。",
                limit.service.label(),
                limit.max_users,
                limit.max_users
            ),
        }
    }

    pub(crate) fn english(&self, company: CompanyId) -> String {
        match self {
            ServiceRefusal::NoSuchCompany => format!("no company with id {}", company.0),
            ServiceRefusal::Closed => format!("company {} was closed", company.0),
            ServiceRefusal::OverLimit { users, limit } => format!(
                "company {} has {users} users; {} allows at most {}",
                company.0,
                limit.service.code(),
                limit.max_users
            ),
        }
    }
}

/// The company before the change, as [`Shomei::set_service_in`] found it.
pub(crate) struct ServiceBefore {
    pub name: String,
    pub service: Service,
    pub users: i64,
}

impl Shomei {
    /// A service with the limits this bank set for it.
    pub(crate) fn service_limits(&self, service: Service) -> ServiceLimits {
        ServiceLimits {
            service,
            max_users: self.settings.max_users(service),
        }
    }

    fn offered_services(&self) -> Vec<ServiceLimits> {
        [Service::BusinessIb, Service::HottokunWebJr]
            .into_iter()
            .map(|s| self.service_limits(s))
            .collect()
    }

    /// The change of a company's service in `tx`, with its 契約サービス変更
    /// row by `actor` from `client`: refused (nothing written) for a
    /// company not there or closed, or with more users than `service`
    /// allows (the company row locked while they are counted, so no user
    /// is registered meanwhile).
    pub(crate) async fn set_service_in(
        &self,
        tx: &mut Tx,
        company: CompanyId,
        service: Service,
        actor: &str,
        client: &str,
    ) -> Result<Result<ServiceBefore, ServiceRefusal>, ServiceError> {
        let (users, _) = tx.user_counts(company).await.db()?;
        let Some(row) = tx.company(company).await.db()? else {
            return Ok(Err(ServiceRefusal::NoSuchCompany));
        };
        if tx.company_closed(company).await.db()? {
            return Ok(Err(ServiceRefusal::Closed));
        }
        let limit = self.service_limits(service);
        if users > limit.max_users {
            return Ok(Err(ServiceRefusal::OverLimit { users, limit }));
        }
        if !tx.set_company_service(company, service).await.db()? {
            return Ok(Err(ServiceRefusal::NoSuchCompany));
        }
        let detail = format!(
            "契約サービス: {} → {}（利用者数上限 {}人）",
            row.service.label(),
            service.label(),
            limit.max_users
        );
        tx.audit(
            &self
                .entry(Operation::CompanyServiceChange)
                .by_name(Some(company), actor)
                .detail(&detail)
                .client(client),
        )
        .await
        .db()?;
        Ok(Ok(ServiceBefore {
            name: row.name,
            service: row.service,
            users,
        }))
    }

    /// The 業務管理者's door to a company's services: `Ok` for an operator
    /// holding the role, otherwise the refusal with its 失敗 row.
    async fn require_business_admin(
        &self,
        op: &ConsoleOperator,
        client: &str,
    ) -> Result<(), ActionError> {
        self.require_operator_role(
            op,
            OperatorRole::BusinessAdmin,
            Operation::CompanyServiceChange,
            NOT_BUSINESS_ADMIN,
            client,
        )
        .await
    }

    /// OPR025: a company's service, users and limits, and what the bank
    /// offers (業務管理者 only).
    pub async fn company_services(
        &self,
        op: &ConsoleOperator,
        company: CompanyId,
        client: &str,
    ) -> Result<CompanyServices, ActionError> {
        self.require_business_admin(op, client).await?;
        let found = self.store.companies().await.db()?;
        let Some(c) = found.into_iter().find(|c| c.id == company) else {
            return Err(ActionError::Refused(NO_SUCH_COMPANY.into()));
        };
        if self
            .store
            .company_closures()
            .await
            .db()?
            .iter()
            .any(|(id, _)| *id == company)
        {
            return Err(ActionError::Refused(COMPANY_CLOSED.into()));
        }
        Ok(CompanyServices {
            id: c.id,
            name: c.name,
            current: self.service_limits(c.service),
            users: c.users,
            offered: self.offered_services(),
        })
    }

    /// OPR025 → OPR026: the company's service changed by a 業務管理者
    /// after their own password, in one transaction with its 契約サービス変更
    /// row. A refusal after the password writes a 失敗 row of the company.
    pub async fn console_set_service(
        &self,
        op: &ConsoleOperator,
        company: CompanyId,
        service: &str,
        password: &str,
        client: &str,
    ) -> Result<ServiceChanged, ActionError> {
        self.require_business_admin(op, client).await?;
        let Some(service) = Service::from_code(service) else {
            return Err(ActionError::Refused(CHOOSE_SERVICE.into()));
        };
        let target = company.0.to_string();
        let ctx = OperatorContext {
            op: Operation::CompanyServiceChange,
            target: &target,
            client,
        };
        let (mut tx, me) = self.confirm_operator(op, password, ctx).await?;
        let actor = me.operator.name.actor();
        if let Some(row) = tx.company(company).await.db()?
            && row.service == service
        {
            tx.commit().await.db()?;
            return Err(ActionError::Refused(SAME_SERVICE.into()));
        }
        match self
            .set_service_in(&mut tx, company, service, &actor, client)
            .await?
        {
            Ok(before) => {
                tx.commit().await.db()?;
                Ok(ServiceChanged {
                    id: company,
                    name: before.name,
                    before: self.service_limits(before.service),
                    after: self.service_limits(service),
                    users: before.users,
                    at: self.now(),
                })
            }
            Err(refusal) => {
                let message = refusal.message_ja();
                let owner = (refusal != ServiceRefusal::NoSuchCompany).then_some(company);
                tx.audit(
                    &self
                        .entry(Operation::CompanyServiceChange)
                        .by_name(owner, &actor)
                        .target(if owner.is_some() { "" } else { &target })
                        .outcome(Outcome::Failed)
                        .detail(&message)
                        .client(client),
                )
                .await
                .db()?;
                tx.commit().await.db()?;
                Err(ActionError::Refused(message))
            }
        }
    }
}
