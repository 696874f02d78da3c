//! Settings of the product: policy numbers and the help desks. Every default
//! is the one PRODUCT.md gives; `shomei.example.toml` documents them.

use crate::Db as _;
use serde::Deserialize;
use shomei_core::{LockoutPolicy, Service};
use time::{Duration, UtcOffset};

/// A service's help-desk contact, shown in every page's footer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelpDesk {
    /// The desk's name.
    pub name: String,
    /// Its telephone number.
    pub phone: String,
    /// Its opening hours.
    pub hours: String,
    /// Its e-mail address.
    pub email: String,
}

/// The product's settings (the config file's `[settings]`): policy numbers, limits and help desks.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Shown in CA names and page headers.
    pub bank_name: String,
    /// Days a client certificate is valid.
    pub cert_validity_days: i64,
    /// Days before expiry from which a certificate is 更新可.
    pub renewal_window_days: i64,
    /// Login-password failures in a row after which the login is 一時停止.
    pub login_temp_lock_after: u32,
    /// Minutes a 一時停止 lasts.
    pub login_temp_lock_minutes: i64,
    /// Login-password failures in a row after which the user is 利用停止.
    pub login_stop_after: u32,
    /// 確認用パスワード failures in a row after which it is stopped.
    pub confirm_stop_after: u32,
    /// Failed logins (and enrollments) from one client address within
    /// `address_window_minutes` after which that address is refused for the
    /// rest of the window; 0 turns this off. Against password spraying.
    pub address_failure_limit: u32,
    /// Minutes over which an address's failures are counted.
    pub address_window_minutes: i64,
    /// Password-hashing workers (Argon2id, 19 MiB each, reused); 0: one per
    /// core. With `hash_queue`, the most password checks under way at once;
    /// beyond that a login is answered 「ただいま混雑しています」 (503).
    pub hash_workers: usize,
    /// Password checks waiting for a worker at most.
    pub hash_queue: usize,
    /// More places, only for returning customers: a login that brings the
    /// device cookie its browser got at a successful login of the same login
    /// ID. Their checks are hashed before other waiting ones, and they are
    /// not counted against their address (`address_failure_limit`), so a
    /// flood of logins from anywhere does not keep them out.
    pub hash_reserved_places: usize,
    /// How many steps of scheduling priority (nice) the password-hashing
    /// workers run below the server's other threads, except the one worker
    /// of returning customers (there when `hash_reserved_places` is not 0):
    /// under a flood of logins, the pages and their checks go first. 0: the
    /// same priority.
    pub hash_workers_nice: i32,
    /// Days a device cookie stays valid (renewed at each successful login).
    pub device_cookie_days: i64,
    /// How long a claimed password check holds its place in the lockout
    /// count if its server dies before recording the result.
    pub password_claim_seconds: i64,
    /// Logged-in portal sessions at most, and per user; a user's oldest
    /// session ends when they open one more. Anonymous visitors hold none.
    pub max_sessions: usize,
    /// Logged-in sessions one user holds at most.
    pub max_sessions_per_user: usize,
    /// Minutes the login form stays valid (its CSRF token is signed, so the
    /// login page keeps no state per visitor).
    pub login_form_minutes: i64,
    /// Listener limits: TLS handshake, request header and idle keep-alive
    /// timeouts (seconds); connections at most per listener and per client
    /// address.
    pub tls_handshake_timeout_seconds: u64,
    /// Seconds a request's header may take to arrive.
    pub header_timeout_seconds: u64,
    /// Seconds a keep-alive connection may stay idle.
    pub idle_timeout_seconds: u64,
    /// Connections one listener holds at most.
    pub max_connections: usize,
    /// Connections one client address holds at most per listener.
    pub max_connections_per_address: usize,
    /// A server that cannot confirm its revocation view is current within
    /// this many seconds refuses certificate-method logins and renewals,
    /// answers OCSP tryLater and fails /readyz, until it can again.
    pub revocation_view_max_lag_seconds: u64,
    /// Idle minutes after which a portal session ends (ログアウト).
    pub session_idle_minutes: i64,
    /// Idle minutes after which an operator console session ends (the
    /// operator's password opens a new one).
    pub operator_session_idle_minutes: i64,
    /// The help desk's user search (OPR010) counts the users found up to
    /// this many; beyond it the screen says 「1,000件以上」 (with this
    /// number) and pages in login-ID order, so a search that finds everyone
    /// costs one page, not a count of everyone.
    pub helpdesk_search_count_max: i64,
    /// Hours until a CRL's nextUpdate (each is re-signed at half this time).
    pub crl_next_update_hours: i64,
    /// How many CRL partitions new certificates are spread over (each names
    /// one in its CRL distribution point; a revocation re-signs only its
    /// partition's CRL). 0: none, one undivided CRL for every certificate.
    /// At 64, a million revoked make CRLs of about 800 kB each.
    pub crl_partitions: u16,
    /// Pre-signed OCSP answers kept at most (one per certificate in force
    /// that was issued or asked about, about 400 octets each with their
    /// index); beyond it, answers about other certificates are signed for
    /// each request. 0: none kept.
    pub ocsp_presigned_max: usize,
    /// "full" (default): every commit is flushed to disk before the answer;
    /// "normal": written to the WAL, safe against a process crash but not a
    /// power loss.
    pub durability: String,
    /// PostgreSQL connections a node uses at most for its work (its
    /// revocation listener has one more of its own). 0 (default): twice the
    /// CPU cores, at least 4. SQLite: not used.
    pub database_pool_size: u32,
    /// Offset used to show times on screens (JST).
    pub display_utc_offset_hours: i8,
    /// Lengths allowed for new login IDs (half-width letters and digits).
    pub login_id_min_length: usize,
    /// The longest new login ID.
    pub login_id_max_length: usize,
    /// Lengths allowed for new login and confirmation passwords.
    pub password_min_length: usize,
    /// The longest new password.
    pub password_max_length: usize,
    /// Users a company may have, by contracted service.
    pub business_ib_max_users: i64,
    /// Users a ほっと君WebJr. company may have.
    pub hottokun_webjr_max_users: i64,
    /// Sender of notices (From:).
    pub mail_from: String,
    /// SMTP server for notices; empty: notices are written to outbox/.
    pub smtp_host: String,
    /// The SMTP server's port.
    pub smtp_port: u16,
    /// The SMTP login; empty: none.
    pub smtp_username: String,
    /// The SMTP password.
    pub smtp_password: String,
    /// An extra root certificate (PEM file) to trust for the SMTP server's
    /// TLS, besides the public ones.
    pub smtp_ca_file: String,
    /// Seconds between the server's upkeep rounds (idle sessions, CRL
    /// refresh, notices).
    pub upkeep_interval_seconds: u64,
    /// The issuing CA's key in a PKCS#11 token (an HSM): the module (shared
    /// library). Empty: the key is a file in ca/ (mode 0600). Set it before
    /// the CA is created; the key is then generated in the token and never
    /// leaves it.
    pub pkcs11_module: String,
    /// The token's label.
    pub pkcs11_token_label: String,
    /// The key's label in the token.
    pub pkcs11_key_label: String,
    /// A file holding the token's user PIN; empty: the environment variable
    /// SHOMEI_PKCS11_PIN.
    pub pkcs11_pin_file: String,
    /// The ビジネスIB help desk.
    pub business_ib: HelpDesk,
    /// The ほっと君WebJr. help desk.
    pub hottokun_webjr: HelpDesk,
    /// The PostgreSQL database shared by every node (`--database-url`,
    /// `database_url` at the top of the config file, `SHOMEI_DATABASE_URL`);
    /// none: SQLite, `shomei.db` in the data directory. Not read from
    /// `[settings]`: the binary sets it.
    #[serde(skip)]
    pub database_url: Option<DatabaseUrl>,
}

/// A PostgreSQL URL, `postgres://USER:PASSWORD@HOST:PORT/DB`, its form
/// checked (the server not asked). Shown (`Debug`, `Display`) without its
/// password; which store reads it is the service's business.
#[derive(Debug, Clone, PartialEq)]
pub struct DatabaseUrl(shomei_store::DatabaseUrl);

impl DatabaseUrl {
    /// Checks `url`'s form; the message of a refusal never shows the password.
    pub fn parse(url: &str) -> Result<Self, crate::DatabaseError> {
        Ok(Self(shomei_store::DatabaseUrl::parse(url).db()?))
    }

    /// The URL itself, password included: for tools that connect on their
    /// own (tests, `pg_dump`); never for logs or screens.
    pub fn with_password(&self) -> &str {
        self.0.with_password()
    }
}

impl std::fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            bank_name: "ほくぎんデモ銀行".into(),
            cert_validity_days: 365,
            renewal_window_days: 40,
            login_temp_lock_after: 3,
            login_temp_lock_minutes: 30,
            login_stop_after: 6,
            confirm_stop_after: 6,
            address_failure_limit: 50,
            address_window_minutes: 10,
            hash_workers: 0,
            hash_queue: 64,
            hash_reserved_places: 8,
            hash_workers_nice: 10,
            device_cookie_days: 180,
            password_claim_seconds: 120,
            max_sessions: 100_000,
            max_sessions_per_user: 10,
            login_form_minutes: 60,
            tls_handshake_timeout_seconds: 10,
            header_timeout_seconds: 10,
            idle_timeout_seconds: 60,
            max_connections: 10_000,
            max_connections_per_address: 256,
            revocation_view_max_lag_seconds: 5,
            session_idle_minutes: 10,
            operator_session_idle_minutes: 5,
            helpdesk_search_count_max: 1000,
            crl_next_update_hours: 24,
            crl_partitions: 64,
            ocsp_presigned_max: 1_000_000,
            durability: "full".into(),
            database_pool_size: 0,
            display_utc_offset_hours: 9,
            login_id_min_length: 6,
            login_id_max_length: 12,
            password_min_length: 8,
            password_max_length: 32,
            business_ib_max_users: 100,
            hottokun_webjr_max_users: 10,
            mail_from: "no-reply@example.jp".into(),
            smtp_host: String::new(),
            smtp_port: 587,
            smtp_username: String::new(),
            smtp_password: String::new(),
            database_url: None,
            smtp_ca_file: String::new(),
            upkeep_interval_seconds: 30,
            pkcs11_module: String::new(),
            pkcs11_token_label: String::new(),
            pkcs11_key_label: "shomei-issuing-ca".into(),
            pkcs11_pin_file: String::new(),
            business_ib: HelpDesk {
                name: "[ビジネスIB] ほっとコールセンター".into(),
                phone: "0120-000-001".into(),
                hours: "平日 9:00~17:00（銀行休業日を除きます）".into(),
                email: "business_ib@example.jp".into(),
            },
            hottokun_webjr: HelpDesk {
                name: "[ほっと君WebJr.] ほっとコールセンター".into(),
                phone: "0120-000-002".into(),
                hours: "平日 9:00~17:00（銀行休業日を除きます）".into(),
                email: "web_jr@example.jp".into(),
            },
        }
    }
}

impl Settings {
    /// The lockout rules, as the core applies them.
    pub fn lockout(&self) -> LockoutPolicy {
        LockoutPolicy {
            login_temp_lock_after: self.login_temp_lock_after,
            login_temp_lock_for: Duration::minutes(self.login_temp_lock_minutes),
            login_stop_after: self.login_stop_after,
            confirm_stop_after: self.confirm_stop_after,
        }
    }

    /// The window before expiry in which a certificate is 更新可.
    pub(crate) fn renewal_window(&self) -> Duration {
        Duration::days(self.renewal_window_days)
    }

    /// How long a new certificate is valid.
    pub fn cert_validity(&self) -> Duration {
        Duration::days(self.cert_validity_days)
    }

    /// Points these settings at the PostgreSQL database of `url`
    /// (`postgres://USER:PASSWORD@HOST:PORT/DB`, its form checked, the
    /// server not asked): what `--database-url` sets.
    pub fn use_database_url(&mut self, url: &str) -> Result<(), crate::DatabaseError> {
        self.database_url = Some(DatabaseUrl::parse(url)?);
        Ok(())
    }

    /// Opens the database these settings name: PostgreSQL at
    /// `database_url`, else SQLite in `data_dir`.
    pub(crate) async fn open_store(
        &self,
        data_dir: &std::path::Path,
    ) -> Result<shomei_store::Store, shomei_store::StoreError> {
        let db_file = data_dir.join("shomei.db");
        let at = match &self.database_url {
            Some(url) => shomei_store::StoreLocation::Postgres(&url.0),
            None => shomei_store::StoreLocation::Sqlite(&db_file),
        };
        shomei_store::Store::open_at(at, self.durability(), self.database_pool_size).await
    }

    pub(crate) fn durability(&self) -> shomei_store::Durability {
        if self.durability == "normal" {
            shomei_store::Durability::Normal
        } else {
            shomei_store::Durability::Full
        }
    }

    /// The message for a login ID that does not fit the policy.
    pub(crate) fn login_id_rule_ja(&self) -> String {
        format!(
            "ログインIDは{}文字以上{}文字以内の半角英数字で入力してください。",
            self.login_id_min_length, self.login_id_max_length
        )
    }

    /// The lengths allowed for new passwords.
    pub fn password_policy(&self) -> shomei_core::PasswordPolicy {
        shomei_core::PasswordPolicy {
            min_len: self.password_min_length,
            max_len: self.password_max_length,
        }
    }

    /// The most users a company of this service may have.
    pub fn max_users(&self, s: Service) -> i64 {
        match s {
            Service::BusinessIb => self.business_ib_max_users,
            Service::HottokunWebJr => self.hottokun_webjr_max_users,
        }
    }

    /// Idle time after which a portal session ends.
    pub fn session_idle(&self) -> Duration {
        Duration::minutes(self.session_idle_minutes)
    }

    /// Idle time after which an operator console session ends.
    pub fn operator_session_idle(&self) -> Duration {
        Duration::minutes(self.operator_session_idle_minutes)
    }

    /// The offset in which screens show times.
    pub fn display_offset(&self) -> UtcOffset {
        UtcOffset::from_hms(self.display_utc_offset_hours, 0, 0).unwrap_or(UtcOffset::UTC)
    }

    /// The help desk of service `s`.
    pub fn help_desk(&self, s: Service) -> &HelpDesk {
        match s {
            Service::BusinessIb => &self.business_ib,
            Service::HottokunWebJr => &self.hottokun_webjr,
        }
    }

    /// Where the issuing CA's key is when it is in a PKCS#11 token, with
    /// the PIN read from `pkcs11_pin_file` or SHOMEI_PKCS11_PIN; `None`
    /// when the key is a file.
    pub(crate) fn pkcs11(&self) -> Result<Option<shomei_pki::Pkcs11Config>, String> {
        if self.pkcs11_module.is_empty() {
            return Ok(None);
        }
        let pin = if self.pkcs11_pin_file.is_empty() {
            std::env::var("SHOMEI_PKCS11_PIN").map_err(|_| {
                "pkcs11_module is set but there is no PIN: set pkcs11_pin_file or SHOMEI_PKCS11_PIN"
                    .to_string()
            })?
        } else {
            std::fs::read_to_string(&self.pkcs11_pin_file)
                .map_err(|e| format!("cannot read pkcs11_pin_file {}: {e}", self.pkcs11_pin_file))?
                .trim_end_matches(['\r', '\n'])
                .to_string()
        };
        Ok(Some(shomei_pki::Pkcs11Config {
            module: self.pkcs11_module.clone().into(),
            token_label: self.pkcs11_token_label.clone(),
            key_label: self.pkcs11_key_label.clone(),
            pin,
        }))
    }

    /// Refuses settings that would make the rules meaningless.
    pub fn validate(&self) -> Result<(), String> {
        let checks = [
            (
                self.cert_validity_days > 0,
                "cert_validity_days must be positive",
            ),
            (
                self.renewal_window_days >= 0 && self.renewal_window_days < self.cert_validity_days,
                "renewal_window_days must be between 0 and cert_validity_days",
            ),
            (
                self.login_temp_lock_after >= 1,
                "login_temp_lock_after must be at least 1",
            ),
            (
                self.login_stop_after >= self.login_temp_lock_after,
                "login_stop_after must be at least login_temp_lock_after",
            ),
            (
                self.confirm_stop_after >= 1,
                "confirm_stop_after must be at least 1",
            ),
            (
                self.address_window_minutes >= 1,
                "address_window_minutes must be at least 1",
            ),
            (
                self.login_temp_lock_minutes >= 1,
                "login_temp_lock_minutes must be at least 1",
            ),
            (
                self.session_idle_minutes >= 1,
                "session_idle_minutes must be at least 1",
            ),
            (
                self.operator_session_idle_minutes >= 1,
                "operator_session_idle_minutes must be at least 1",
            ),
            (
                matches!(self.durability.as_str(), "full" | "normal"),
                "durability must be \"full\" or \"normal\"",
            ),
            (
                self.database_pool_size <= 1000,
                "database_pool_size must be at most 1000",
            ),
            (
                (1..=1_000_000).contains(&self.helpdesk_search_count_max),
                "helpdesk_search_count_max must be between 1 and 1000000",
            ),
            (
                self.crl_next_update_hours >= 1,
                "crl_next_update_hours must be at least 1",
            ),
            (
                self.crl_partitions <= shomei_core::MAX_CRL_PARTITIONS,
                "crl_partitions must be at most 1024",
            ),
            (
                self.ocsp_presigned_max <= 100_000_000,
                "ocsp_presigned_max must be at most 100000000",
            ),
            (
                self.hash_workers <= 256 && self.hash_queue <= 100_000,
                "hash_workers must be at most 256 and hash_queue at most 100000",
            ),
            (
                self.hash_reserved_places <= 10_000,
                "hash_reserved_places must be at most 10000",
            ),
            (
                (0..=19).contains(&self.hash_workers_nice),
                "hash_workers_nice must be between 0 and 19",
            ),
            (
                (1..=400).contains(&self.device_cookie_days),
                "device_cookie_days must be between 1 and 400",
            ),
            (
                self.password_claim_seconds >= 10,
                "password_claim_seconds must be at least 10",
            ),
            (
                self.max_sessions >= 1 && self.max_sessions_per_user >= 1,
                "max_sessions and max_sessions_per_user must be at least 1",
            ),
            (
                self.login_form_minutes >= 1,
                "login_form_minutes must be at least 1",
            ),
            (
                self.tls_handshake_timeout_seconds >= 1
                    && self.header_timeout_seconds >= 1
                    && self.idle_timeout_seconds >= 1,
                "tls_handshake_timeout_seconds, header_timeout_seconds and idle_timeout_seconds must be at least 1",
            ),
            (
                self.revocation_view_max_lag_seconds >= 1,
                "revocation_view_max_lag_seconds must be at least 1",
            ),
            (
                self.max_connections >= 1 && self.max_connections_per_address >= 1,
                "max_connections and max_connections_per_address must be at least 1",
            ),
            (
                (-12..=14).contains(&self.display_utc_offset_hours),
                "display_utc_offset_hours must be between -12 and 14",
            ),
            (
                self.password_min_length >= 4
                    && self.password_min_length <= self.password_max_length
                    && self.password_max_length <= 128,
                "password_min_length must be at least 4 and at most password_max_length (at most 128)",
            ),
            (
                self.login_id_min_length >= 1
                    && self.login_id_min_length <= self.login_id_max_length
                    && self.login_id_max_length <= shomei_core::LoginId::LIMIT,
                "login_id_min_length must be at least 1 and at most login_id_max_length (at most 32)",
            ),
            (
                (1..=3600).contains(&self.upkeep_interval_seconds),
                "upkeep_interval_seconds must be between 1 and 3600",
            ),
            (
                self.mail_from.contains('@') && !self.mail_from.contains(char::is_whitespace),
                "mail_from must be an e-mail address",
            ),
            (
                self.business_ib_max_users >= 1 && self.hottokun_webjr_max_users >= 1,
                "business_ib_max_users and hottokun_webjr_max_users must be at least 1",
            ),
            (
                self.pkcs11_module.is_empty()
                    || (!self.pkcs11_token_label.is_empty() && !self.pkcs11_key_label.is_empty()),
                "pkcs11_module needs pkcs11_token_label and pkcs11_key_label",
            ),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, msg)) => Err((*msg).to_string()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Settings;

    /// The binary's --database-url: a PostgreSQL URL is taken; anything
    /// else is refused by the store's message, which never shows the
    /// password, and the settings keep SQLite.
    #[test]
    fn a_database_url_is_checked_when_it_is_set() {
        let mut s = Settings::default();
        let e = s
            .use_database_url("mysql://shomei:Secret1@db/shomei")
            .unwrap_err()
            .to_string();
        assert!(e.contains("must start with postgres://"), "{e}");
        assert!(!e.contains("Secret1"), "{e}");
        assert!(s.database_url.is_none());
        s.use_database_url("postgres://shomei:Secret1@db:5432/shomei")
            .unwrap();
        let url = s.database_url.as_ref().map(|u| u.to_string());
        assert_eq!(url.as_deref(), Some("postgres://shomei:***@db:5432/shomei"));
    }

    #[test]
    fn the_database_pool_size_is_bounded() {
        let mut s = Settings::default();
        assert_eq!(s.validate(), Ok(()), "the default (automatic) is valid");
        s.database_pool_size = 1000;
        assert_eq!(s.validate(), Ok(()));
        s.database_pool_size = 1001;
        assert_eq!(
            s.validate(),
            Err("database_pool_size must be at most 1000".to_string())
        );
    }
}
