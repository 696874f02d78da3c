//! 企業管理 (BSSK002 → BSSK003 → BSSK004): the company's information; its
//! マスター user keeps the contact up to date, confirmed with the
//! 確認用パスワード. The change and its 操作履歴 row commit together.

use crate::Db as _;
use shomei_core::records::CompanyContact;
use shomei_core::{CompanyId, Operation};
use shomei_store::AuditEntry;

use crate::Master;
use crate::access::check::Context;

/// Why nothing changed: a message for the screen.
pub type CompanyError = crate::ActionError;

/// Checks the contact's fields; the message names the first bad one.
pub(crate) fn check_contact(c: &CompanyContact) -> Result<(), String> {
    let plain = |s: &str| !s.chars().any(char::is_control);
    if c.name.trim().is_empty() || c.name.chars().count() > 40 || !plain(&c.name) {
        return Err("担当者名は1文字以上40文字以内で入力してください。".into());
    }
    let digits = c.phone.chars().filter(char::is_ascii_digit).count();
    if !(10..=13).contains(&digits)
        || c.phone.len() > 20
        || !c.phone.chars().all(|ch| ch.is_ascii_digit() || ch == '-')
    {
        return Err("電話番号は半角数字とハイフンで入力してください（例: 0120-000-001）。".into());
    }
    let at = c.email.find('@');
    if c.email.len() > 254
        || !c.email.is_ascii()
        || !plain(&c.email)
        || c.email.contains(' ')
        || at.is_none_or(|i| i == 0 || !c.email[i + 1..].contains('.'))
    {
        return Err("メールアドレスを正しく入力してください。".into());
    }
    Ok(())
}

/// What 企業管理 (BSSK002) shows beside the company's name and service.
#[derive(Debug, Clone)]
pub struct CompanyOverview {
    /// The company's name, service and contact details.
    pub contact: CompanyContact,
    /// Users of the company (not deleted).
    pub users: usize,
}

impl crate::Shomei {
    /// 企業管理 (BSSK002): the company's contact and its number of users.
    pub async fn company_overview(&self, company: CompanyId) -> crate::Result<CompanyOverview> {
        Ok(CompanyOverview {
            contact: self.store.company_contact(company).await.db()?,
            users: self.store.users_with_latest_cert(company).await.db()?.len(),
        })
    }
}

impl Master<'_> {
    /// The contact as BSSK003 offers it for editing.
    pub async fn company_contact(&self) -> crate::Result<CompanyContact> {
        Ok(self
            .store
            .company_contact(self.actor().company_id)
            .await
            .db()?)
    }

    /// 実行 on BSSK003: the マスター user replaces the company's contact.
    pub async fn update_company_contact(
        &self,
        contact: &CompanyContact,
        confirm_password: &str,
        client: &str,
    ) -> Result<(), CompanyError> {
        let actor = self.actor();
        let contact = CompanyContact {
            name: contact.name.trim().to_owned(),
            phone: contact.phone.trim().to_owned(),
            email: contact.email.trim().to_owned(),
        };
        check_contact(&contact).map_err(CompanyError::Refused)?;
        let now = self.now();
        let ctx = Context {
            op: Operation::CompanyContact,
            target: "",
            client,
        };
        let (mut tx, _confirmed) = self
            .confirm(actor, confirm_password, ctx)
            .await?
            .map_err(|r| CompanyError::Refused(r.confirm_problem().message_ja().into()))?;
        tx.set_company_contact(actor.company_id, &contact)
            .await
            .db()?;
        let e = AuditEntry::new(Operation::CompanyContact, now).by_actor(actor);
        tx.audit(&e.detail("連絡先").client(client)).await.db()?;
        tx.commit().await.db()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_checked_field_by_field() {
        let ok = CompanyContact {
            name: "総務部 北銀".into(),
            phone: "076-000-0000".into(),
            email: "soumu@example.jp".into(),
        };
        assert_eq!(check_contact(&ok), Ok(()));
        let with = |f: &dyn Fn(&mut CompanyContact)| {
            let mut c = ok.clone();
            f(&mut c);
            check_contact(&c).unwrap_err()
        };
        assert!(with(&|c| c.name = " ".into()).contains("担当者名"));
        assert!(with(&|c| c.name = "あ".repeat(41)).contains("担当者名"));
        assert!(with(&|c| c.phone = "０７６".into()).contains("電話番号"));
        assert!(with(&|c| c.phone = "12345".into()).contains("電話番号"));
        assert!(with(&|c| c.email = "no-at.example.jp".into()).contains("メールアドレス"));
        assert!(with(&|c| c.email = "a@b".into()).contains("メールアドレス"));
    }
}
