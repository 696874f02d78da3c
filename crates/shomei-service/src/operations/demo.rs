//! The guide's demo company and users, created on the first `serve --demo`.

use crate::Db as _;
use shomei_core::Operation;
use shomei_core::{LoginId, RevocationReason, Role, Serial, Service};
use shomei_pki::ClientSubject;
use shomei_store::{AuditEntry, NewCert, NewUser};
use time::Duration;

use crate::{Result, Shomei};

/// Login password of every demo user.
pub const DEMO_LOGIN_PASSWORD: &str = "Shomei#Demo1";
/// 確認用パスワード of every demo user.
pub const DEMO_CONFIRM_PASSWORD: &str = "Shomei#Kakunin1";
/// Password of the demo users' PKCS#12 files (`demo-certs/` in the data directory).
pub const DEMO_P12_PASSWORD: &str = "Shomei#P12demo";

/// A demo user as printed at start-up.
#[derive(Debug, Clone)]
pub struct DemoUser {
    /// The user's company.
    pub company: &'static str,
    /// The user's ログインID.
    pub login_id: &'static str,
    /// The user's name.
    pub name: &'static str,
    /// The user's role in the company.
    pub role: Role,
    /// What the start did about the user's certificate (as printed).
    pub cert: &'static str,
    /// For a valid demo certificate created by this start: its key (PKCS#8)
    /// and certificate, so the demo user's "PC" can be set up with it.
    pub key_and_cert: Option<(Vec<u8>, Vec<u8>)>,
}

enum DemoCert {
    None,
    /// Issued this many days ago, valid for the configured validity.
    IssuedDaysAgo(i64),
    /// Expired this many days ago.
    ExpiredDaysAgo(i64),
    /// Revoked this many days ago.
    RevokedDaysAgo(i64),
    /// Expires in this many days (inside the renewal window).
    ExpiresInDays(i64),
}

const COMPANY_A: &str = "株式会社ほくぎん商事";
const COMPANY_B: &str = "有限会社ほっと物産";

fn plan() -> Vec<(DemoUser, DemoCert)> {
    let u = |company, login_id, name, role, cert| DemoUser {
        company,
        login_id,
        name,
        role,
        cert,
        key_and_cert: None,
    };
    vec![
        (
            u(COMPANY_A, "hanakodt", "北銀 花子", Role::Admin, "発行済"),
            DemoCert::IssuedDaysAgo(30),
        ),
        (
            u(
                COMPANY_A,
                "ichirodt",
                "データ朗",
                Role::General,
                "有効期限切れ",
            ),
            DemoCert::ExpiredDaysAgo(35),
        ),
        (
            u(COMPANY_A, "jirodt", "データ二郎", Role::Master, "未発行"),
            DemoCert::None,
        ),
        (
            u(
                COMPANY_A,
                "sachikodt",
                "データ幸子",
                Role::General,
                "失効済",
            ),
            DemoCert::RevokedDaysAgo(10),
        ),
        (
            u(COMPANY_A, "tarodt", "データ太郎", Role::Admin, "更新可"),
            DemoCert::ExpiresInDays(20),
        ),
        (
            u(COMPANY_B, "hottojr01", "北陸 一郎", Role::Master, "発行済"),
            DemoCert::IssuedDaysAgo(100),
        ),
        (
            u(COMPANY_B, "hottojr02", "北陸 二美", Role::General, "発行済"),
            DemoCert::IssuedDaysAgo(50),
        ),
    ]
}

impl Shomei {
    /// Creates the demo data unless the database already holds a company.
    /// Returns the demo users either way, for the start-up banner.
    pub async fn seed_demo(&self) -> Result<Vec<DemoUser>> {
        let plan = plan();
        let mut users: Vec<DemoUser> = plan.iter().map(|(u, _)| u.clone()).collect();
        if self.store.company_count().await.db()? > 0 {
            return Ok(users);
        }
        let now = self.now();
        let validity = self.settings.cert_validity();
        let mut hashed = Vec::new();
        for _ in &plan {
            hashed.push((
                self.hasher.hash(DEMO_LOGIN_PASSWORD).await?,
                self.hasher.hash(DEMO_CONFIRM_PASSWORD).await?,
            ));
        }
        let mut tx = self.store.begin().await.db()?;
        let a = tx
            .insert_company(COMPANY_A, Service::BusinessIb, now)
            .await
            .db()?;
        let b = tx
            .insert_company(COMPANY_B, Service::HottokunWebJr, now)
            .await
            .db()?;
        for (((u, cert), (lh, ch)), out) in plan.iter().zip(&hashed).zip(users.iter_mut()) {
            let company_id = if u.company == COMPANY_A { a } else { b };
            let login_id = LoginId::parse(u.login_id).expect("demo login IDs are valid");
            let email = format!("{}@example.jp", u.login_id);
            let user_id = tx
                .insert_user(
                    &NewUser {
                        company_id,
                        login_id: &login_id,
                        name: u.name,
                        role: u.role,
                        email: &email,
                        login_hash: lh,
                        confirm_hash: ch,
                    },
                    now,
                )
                .await
                .db()?;
            let (not_before, revoked) = match cert {
                DemoCert::None => continue,
                DemoCert::IssuedDaysAgo(d) => (now - Duration::days(*d), None),
                DemoCert::ExpiredDaysAgo(d) => (now - Duration::days(*d) - validity, None),
                DemoCert::RevokedDaysAgo(d) => {
                    (now - Duration::days(d + 50), Some(now - Duration::days(*d)))
                }
                DemoCert::ExpiresInDays(d) => (now + Duration::days(*d) - validity, None),
            };
            // A real certificate from our CA; its key goes back to the caller.
            let key = shomei_pki::generate_p256()?;
            let issued = self.ca.issue_client(
                &key,
                &ClientSubject {
                    login_id: u.login_id,
                    company_name: u.company,
                },
                not_before,
                not_before + validity,
            )?;
            let serial = Serial::from_bytes(&issued.serial).expect("CA serials are valid");
            tx.insert_cert(&NewCert {
                user_id,
                serial: &serial,
                not_before: issued.not_before,
                not_after: issued.not_after,
                der: &issued.der,
                issued_at: not_before,
                crl_scope: issued.crl_scope,
            })
            .await
            .db()?;
            if matches!(
                cert,
                DemoCert::IssuedDaysAgo(_) | DemoCert::ExpiresInDays(_)
            ) {
                out.key_and_cert = Some((key.serialize_der(), issued.der.clone()));
            }
            if let Some(at) = revoked {
                tx.revoke_cert(&serial, at, RevocationReason::CessationOfOperation.code())
                    .await
                    .db()?;
            }
        }
        for company in [a, b] {
            let e = AuditEntry::new(Operation::DemoData, now).by_name(Some(company), "(銀行)");
            tx.audit(&e.detail("serve --demo")).await.db()?;
        }
        tx.commit().await.db()?;
        self.reload_revocations().await?;
        Ok(users)
    }
}
