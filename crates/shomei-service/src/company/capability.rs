//! Authority as a capability: the managing use cases are methods of
//! `Manager`, and 企業情報の変更 a method of `Master`, which the service
//! hands only to a user who holds that authority (after lldap's access
//! control: a handler is returned only to who may use it). Holding one is
//! the only way to those use cases, so the screens need not ask again.

use std::ops::Deref;

use shomei_core::authority::{self, Refusal};
use shomei_core::{Actor, Operation};

use crate::Shomei;

/// The service as seen by a user who may manage the company's users
/// (マスター or 管理者), acting as that user.
pub struct Manager<'a> {
    svc: &'a Shomei,
    actor: &'a Actor,
}

/// The service as seen by the company's マスター user, acting as them.
pub struct Master<'a> {
    svc: &'a Shomei,
    actor: &'a Actor,
}

impl Shomei {
    /// The managing use cases for `actor`, or why not (a 一般 user).
    pub fn manager<'a>(&'a self, actor: &'a Actor) -> Result<Manager<'a>, Refusal> {
        authority::may_manage_users(actor)?;
        Ok(Manager { svc: self, actor })
    }

    /// As `manager`, for a use case whose refusal 操作履歴 records: the
    /// refusal is written once here, a failed row of `operation` with its
    /// message, before it is handed back.
    pub async fn manager_recorded<'a>(
        &'a self,
        actor: &'a Actor,
        operation: Operation,
        client: &str,
    ) -> crate::Result<Result<Manager<'a>, Refusal>> {
        match self.manager(actor) {
            Ok(m) => Ok(Ok(m)),
            Err(r) => Ok(Err(self.refuse(actor, operation, "", r, client).await?)),
        }
    }

    /// 企業情報の変更 for `actor`, or why not (anyone but the マスター).
    pub fn master<'a>(&'a self, actor: &'a Actor) -> Result<Master<'a>, Refusal> {
        authority::may_change_company(actor)?;
        Ok(Master { svc: self, actor })
    }
}

impl Manager<'_> {
    /// The user acting.
    pub fn actor(&self) -> &Actor {
        self.actor
    }
}

impl Master<'_> {
    /// The user acting.
    pub fn actor(&self) -> &Actor {
        self.actor
    }
}

/// The use cases' bodies reach the service's parts (store, settings, clock)
/// through the capability.
impl Deref for Manager<'_> {
    type Target = Shomei;
    fn deref(&self) -> &Shomei {
        self.svc
    }
}

impl Deref for Master<'_> {
    type Target = Shomei;
    fn deref(&self) -> &Shomei {
        self.svc
    }
}
