//! Notices by e-mail: a certificate entering 更新可 (and again 10 days before
//! expiry), and a user of the company locked (to its マスター and 管理者
//! users). Each notice is a row, unique per user, kind and key, claimed
//! before it is sent: sent once, across restarts and several servers on one
//! database. Mail goes over SMTP with STARTTLS required when `smtp_host` is
//! set (lettre), else it is written as RFC 5322 `.eml` files to the outbox
//! folder of the data directory. A notice whose sending fails is released
//! and tried again at the next round.

use crate::Db as _;
use std::path::Path;

use base64::Engine;
use shomei_core::format::jp_datetime;
use shomei_core::{CompanyId, LoginId, UserId};
use shomei_store::{PendingNotice, Tx};
use time::{Duration, OffsetDateTime};

use crate::{Result, ServiceError, Shomei};

const KIND_RENEWAL: &str = "renewal";
const KIND_RENEWAL_10: &str = "renewal-10days";
const KIND_LOCK: &str = "lock";

/// RFC 2047 encoded word for a header with non-ASCII text.
fn encoded(s: &str) -> String {
    if s.is_ascii() {
        s.to_owned()
    } else {
        format!(
            "=?UTF-8?B?{}?=",
            base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
        )
    }
}

/// The message as an RFC 5322 document (UTF-8 text, base64 body).
fn eml(n: &PendingNotice, from: &str, bank: &str, now: OffsetDateTime) -> String {
    let date = now
        .format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default();
    let body = base64::engine::general_purpose::STANDARD.encode(n.body.as_bytes());
    let mut wrapped = String::new();
    for chunk in body.as_bytes().chunks(76) {
        wrapped.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        wrapped.push_str("\r\n");
    }
    format!(
        "From: {} <{from}>\r\nTo: {} <{}>\r\nSubject: {}\r\nDate: {date}\r\nMessage-ID: <notice-{}@shomei>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n{wrapped}",
        encoded(bank),
        encoded(&n.name),
        n.email,
        encoded(&n.subject),
        n.id,
    )
}

impl Shomei {
    /// Queues the renewal notices that are due: 更新可 (the renewal window)
    /// and 10 days before expiry. Returns how many new notices.
    pub async fn queue_renewal_notices(&self) -> Result<usize> {
        let now = self.now();
        let window = self.settings.renewal_window();
        let offset = self.settings.display_offset();
        let due = self.store.expiring_certs(now, now + window).await.db()?;
        let mut tx = self.store.begin().await.db()?;
        let mut added = 0;
        for c in due {
            let Some(u) = tx.user(c.user_id).await.db()? else {
                continue;
            };
            let ten = c.not_after - now <= Duration::days(10);
            let kind = if ten { KIND_RENEWAL_10 } else { KIND_RENEWAL };
            let subject = format!("【{}】電子証明書の更新のお知らせ", self.settings.bank_name);
            let body = format!(
                "{} 様\n\nご利用中の電子証明書（ログインID: {}）の有効期限は {} です。\n\
                 有効期限の{}日前から証明書を更新できます。電子証明書方式でログインすると更新の手順をご案内します。\n\
                 証明書発行アプリをお使いの場合は「shomei-cert renew」で更新できます。\n\n{}\n",
                u.name,
                u.login_id,
                jp_datetime(c.not_after, offset),
                window.whole_days(),
                self.settings.bank_name
            );
            if tx
                .add_notice(u.id, kind, &c.serial, &subject, &body, now)
                .await
                .db()?
            {
                added += 1;
            }
        }
        tx.commit().await.db()?;
        Ok(added)
    }

    /// In a login failure's transaction: tells the company's マスター and
    /// 管理者 users that `login_id` is now `state`.
    pub(crate) async fn queue_lock_notices(
        &self,
        tx: &mut Tx,
        company: CompanyId,
        login_id: &LoginId,
        locked: UserId,
        state: &str,
        now: OffsetDateTime,
    ) -> Result<()> {
        let offset = self.settings.display_offset();
        let subject = format!("【{}】利用者のロックのお知らせ", self.settings.bank_name);
        let body = format!(
            "管理者各位\n\n利用者（ログインID: {login_id}）が {} に「{state}」となりました。\n\
             管理業務 → 利用者管理 →「利用者停止・解除」から解除できます（マスターユーザの場合は銀行へご連絡ください）。\n\n{}\n",
            jp_datetime(now, offset),
            self.settings.bank_name
        );
        let key = format!("{login_id}:{}", now.unix_timestamp());
        for admin in tx.company_admins(company).await.db()? {
            if admin != locked {
                tx.add_notice(admin, KIND_LOCK, &key, &subject, &body, now)
                    .await
                    .db()?;
            }
        }
        Ok(())
    }

    /// Sends the notices not yet sent (SMTP, or the outbox); returns how many.
    pub async fn send_notices(&self) -> Result<usize> {
        let now = self.now();
        let smtp = if self.settings.smtp_host.is_empty() {
            None
        } else {
            Some(smtp_transport(&self.settings)?)
        };
        let mut sent = 0;
        for n in self.store.pending_notices(500).await.db()? {
            if !self.store.claim_notice(n.id, now).await.db()? {
                continue;
            }
            match &smtp {
                None => {
                    let text = eml(&n, &self.settings.mail_from, &self.settings.bank_name, now);
                    write_outbox(&self.outbox, &n, &text)?;
                    tracing::info!(to = %n.login_id, subject = %n.subject, "notice written to the outbox");
                }
                Some(t) => {
                    use lettre::AsyncTransport;
                    let result = match message(&n, &self.settings) {
                        Ok(m) => t.send(m).await.map(|_| ()).map_err(|e| e.to_string()),
                        Err(e) => Err(e),
                    };
                    if let Err(e) = result {
                        // Released: the next round tries again.
                        self.store.release_notice(n.id).await.db()?;
                        tracing::error!(to = %n.login_id, error = %e, "notice not sent over SMTP; will retry");
                        continue;
                    }
                    tracing::info!(to = %n.login_id, subject = %n.subject, "notice sent over SMTP");
                }
            }
            sent += 1;
        }
        Ok(sent)
    }
}

type Smtp = lettre::AsyncSmtpTransport<lettre::Tokio1Executor>;

/// The SMTP transport: STARTTLS required (nothing goes out in the clear),
/// the public roots plus `smtp_ca_file`, credentials when configured.
fn smtp_transport(s: &crate::Settings) -> Result<Smtp> {
    use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
    let fail = |e: String| ServiceError::Mail(e);
    let mut tls = TlsParameters::builder(s.smtp_host.clone());
    if !s.smtp_ca_file.is_empty() {
        let pem = std::fs::read(&s.smtp_ca_file)
            .map_err(|e| fail(format!("cannot read smtp_ca_file {}: {e}", s.smtp_ca_file)))?;
        let cert = Certificate::from_pem(&pem).map_err(|e| fail(format!("smtp_ca_file: {e}")))?;
        tls = tls.add_root_certificate(cert);
    }
    let tls = tls.build_rustls().map_err(|e| fail(e.to_string()))?;
    let mut b = Smtp::builder_dangerous(s.smtp_host.clone())
        .port(s.smtp_port)
        .tls(Tls::Required(tls));
    if !s.smtp_username.is_empty() {
        b = b.credentials(lettre::transport::smtp::authentication::Credentials::new(
            s.smtp_username.clone(),
            s.smtp_password.clone(),
        ));
    }
    Ok(b.build())
}

fn message(n: &PendingNotice, s: &crate::Settings) -> std::result::Result<lettre::Message, String> {
    let from = format!("{} <{}>", s.bank_name, s.mail_from)
        .parse()
        .map_err(|e| format!("mail_from: {e}"))?;
    let to = lettre::message::Mailbox::new(
        Some(n.name.clone()),
        n.email
            .parse()
            .map_err(|e| format!("address of {}: {e}", n.login_id))?,
    );
    lettre::Message::builder()
        .from(from)
        .to(to)
        .subject(n.subject.clone())
        .message_id(Some(format!("<notice-{}@shomei>", n.id)))
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(n.body.clone())
        .map_err(|e| e.to_string())
}

fn write_outbox(dir: &Path, n: &PendingNotice, text: &str) -> Result<()> {
    let io = |source| ServiceError::DataDir {
        path: dir.to_owned(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let name = format!("{}-{}.eml", n.created_at.unix_timestamp(), n.id);
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, dir.join(name)).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_rfc5322_with_encoded_japanese() {
        let n = PendingNotice {
            id: 7,
            email: "taro@example.jp".into(),
            login_id: "tarodt".into(),
            name: "データ太郎".into(),
            subject: "電子証明書の更新のお知らせ".into(),
            body: "本文".into(),
            created_at: OffsetDateTime::UNIX_EPOCH,
        };
        let m = eml(
            &n,
            "no-reply@example.jp",
            "ほくぎんデモ銀行",
            OffsetDateTime::UNIX_EPOCH,
        );
        assert!(m.contains("\r\nTo: =?UTF-8?B?"));
        assert!(m.contains("<taro@example.jp>\r\n"));
        assert!(m.contains("Subject: =?UTF-8?B?"));
        assert!(m.contains("Message-ID: <notice-7@shomei>"));
        let body = m.split("\r\n\r\n").nth(1).unwrap().replace("\r\n", "");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "本文");
    }
}
