//! Adding an operator, in two halves: the key, the certificate of the
//! operator profile and the PKCS#12 made outside any transaction
//! ([`Shomei::prepare_operator`]: signing and hashing are slow), then the
//! operator, their certificate, e-mail address and 操作履歴 row written in
//! the transaction that carries the change ([`Shomei::insert_operator_in`]):
//! the shell's bootstrap and break-glass, or the approval that commits an
//! オペレーター登録 request. The key exists only in the PKCS#12 handed to
//! whoever committed the change; the request's data never holds it.

use crate::Db as _;
use shomei_core::{Operation, OperatorName, OperatorRoles, Serial};
use shomei_store::{NewOperatorCert, Tx};

use crate::operations::console_access::{OperatorContext, operator_row};
use crate::operations::operators::{NewOperator, OperatorAdminError};
use crate::{ServiceError, Shomei};
use shomei_core::Outcome;

/// How long an operator certificate is valid.
const OPERATOR_CERT_DAYS: i64 = 365;

/// A new operator's certificate, PKCS#12 and passwords, not stored yet.
pub(crate) struct PreparedOperator {
    new: NewOperator,
    issued: shomei_pki::IssuedCert,
    confirm_hash: String,
}

/// 16 letters and digits, both present.
fn generated_password() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    loop {
        let p: String = (0..16)
            .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
            .collect();
        if p.chars().any(|c| c.is_ascii_digit()) && p.chars().any(|c| c.is_ascii_alphabetic()) {
            return p;
        }
    }
}

/// An operator's e-mail address: empty, or one '@' within 254 characters
/// without spaces or control characters.
pub(crate) fn operator_email(email: &str) -> Option<&str> {
    let e = email.trim();
    let ok = e.is_empty()
        || (e.len() <= 254
            && e.matches('@').count() == 1
            && !e.starts_with('@')
            && !e.ends_with('@')
            && !e.chars().any(|c| c.is_whitespace() || c.is_control()));
    ok.then_some(e)
}

impl Shomei {
    /// The key, the certificate and the PKCS#12 of a new operator, with
    /// their passwords (each shown once) and the confirmation hash.
    pub(crate) async fn prepare_operator(
        &self,
        name: &OperatorName,
        roles: &OperatorRoles,
    ) -> Result<PreparedOperator, ServiceError> {
        let now = self.now();
        let key = shomei_pki::generate_p256()?;
        let issued = self.ca.issue_operator(
            &key,
            &self.settings.bank_name,
            name.as_str(),
            now,
            now + time::Duration::days(OPERATOR_CERT_DAYS),
        )?;
        let serial = Serial::from_bytes(&issued.serial)
            .ok_or(ServiceError::Invariant("the CA signed an unusable serial"))?;
        let p12_password = generated_password();
        let confirm_password = generated_password();
        let p12 = shomei_pki::pkcs12::write(
            &key.serialize_der(),
            &issued.der,
            &[self.ca.issuing_der().to_vec(), self.ca.root_der().to_vec()],
            &format!("Shomei operator {name}"),
            &p12_password,
        )
        .map_err(|e| ServiceError::Pkcs12(e.to_string()))?;
        let confirm_hash = self.hasher.hash(&confirm_password).await?;
        Ok(PreparedOperator {
            new: NewOperator {
                name: name.clone(),
                roles: roles.clone(),
                serial,
                not_after: issued.not_after,
                p12,
                p12_password,
                confirm_password,
            },
            issued,
            confirm_hash,
        })
    }

    /// The prepared operator, their certificate, address and their
    /// オペレーター登録 row by `actor` in `tx`; refused when the name is
    /// taken (in this transaction's view; the UNIQUE name refuses a race).
    pub(crate) async fn insert_operator_in(
        &self,
        tx: &mut Tx,
        p: PreparedOperator,
        email: &str,
        actor: &str,
        client: &str,
    ) -> Result<NewOperator, OperatorAdminError> {
        let n = p.new;
        if tx.operator_by_name(&n.name).await.db()?.is_some() {
            return Err(OperatorAdminError::NameTaken(n.name.to_string()));
        }
        let now = self.now();
        let id = tx
            .insert_operator(&n.name, &n.roles, &p.confirm_hash, actor, now)
            .await
            .db()?;
        if !email.is_empty() {
            tx.set_operator_email(id, email).await.db()?;
        }
        tx.insert_operator_cert(
            &NewOperatorCert {
                operator_id: id,
                serial: &n.serial,
                not_before: p.issued.not_before,
                not_after: p.issued.not_after,
                der: &p.issued.der,
                crl_scope: p.issued.crl_scope,
            },
            now,
        )
        .await
        .db()?;
        let detail = format!(
            "役割: {} シリアル番号 {} メールアドレス: {}",
            n.roles.labels(),
            n.serial,
            if email.is_empty() { "なし" } else { email }
        );
        let ctx = OperatorContext {
            op: Operation::OperatorAdd,
            target: n.name.as_str(),
            client,
        };
        tx.audit(&operator_row(self, actor, ctx, Outcome::Succeeded, &detail))
            .await
            .db()?;
        Ok(n)
    }
}
