//! Server-side sessions of logged-in users: a random id in a `__Host-`
//! cookie (Secure, HttpOnly, SameSite=Strict), a CSRF token, the idle clock,
//! and the state of the revocation flow between its screens.
//!
//! Anonymous visitors hold no state here: the login forms carry a signed
//! token instead ([`LoginForm`]), so no flood of visitors can push a
//! logged-in session out. The logged-in sessions are bounded in all and per
//! user; at the bound a login is refused as busy, and nobody else's session
//! ends for it.

use shomei_core::{CertState, LoginId, Serial, UserId};
use shomei_service::{DoneRow, PendingRow, SessionRow, Store, StoreError};
use shomei_service::{RevocationDone, RevocationTarget};
use time::OffsetDateTime;

pub const SESSION_COOKIE: &str = "__Host-shomei";

/// The cookie that carries a login form's signed token.
pub const FORM_COOKIE: &str = "__Host-shomei-form";

#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub token: String,
    pub target: RevocationTarget,
}

#[derive(Debug, Clone)]
pub(crate) struct SessionData {
    pub csrf: String,
    pub user: UserId,
    pub last_seen: OffsetDateTime,
    /// BRSK019 waiting for 実行.
    pub pending: Option<Pending>,
    /// BRSK020's content.
    pub done: Option<RevocationDone>,
    /// The certificate a 電子証明書方式 session was opened with; its
    /// revocation ends the session.
    pub cert_serial: Option<Serial>,
}

/// The logged-in sessions, kept in the database by the SHA-256 (hex) of
/// their ids (so any server on it serves any request, and a copy of the
/// database opens no session).
pub struct Sessions {
    store: Store,
    max: usize,
    per_user: usize,
}

/// Every logged-in session place is taken (`max_sessions`).
#[derive(Debug)]
pub(crate) enum CreateError {
    Full,
    Store(StoreError),
}

/// The idle clock is written at most this often per session (it counts in
/// minutes; a write per request would only load the database).
const TOUCH_EVERY: time::Duration = time::Duration::seconds(15);

fn key(id: &str) -> String {
    hex::encode(aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        id.as_bytes(),
    ))
}

pub(crate) fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut b[..]);
    hex::encode(b)
}

/// Compares secrets without an early exit.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

fn pending_row(p: &Pending) -> PendingRow {
    let t = &p.target;
    PendingRow {
        token: p.token.clone(),
        user_id: t.user_id.0,
        login_id: t.login_id.to_string(),
        name: t.name.clone(),
        state: t.state.label().to_owned(),
        expiry: t.expiry.map(|e| e.unix_timestamp()),
        serial: t.serial.to_hex(),
    }
}

fn pending_of(r: PendingRow) -> Option<Pending> {
    Some(Pending {
        token: r.token,
        target: RevocationTarget {
            user_id: UserId(r.user_id),
            login_id: LoginId::parse(&r.login_id)?,
            name: r.name,
            state: CertState::from_label(&r.state)?,
            expiry: match r.expiry {
                Some(e) => Some(OffsetDateTime::from_unix_timestamp(e).ok()?),
                None => None,
            },
            serial: Serial::from_hex(&r.serial)?,
        },
    })
}

fn done_of(r: DoneRow) -> Option<RevocationDone> {
    Some(RevocationDone {
        login_id: LoginId::parse(&r.login_id)?,
        name: r.name,
        state: CertState::from_label(&r.state)?,
        serial: Serial::from_hex(&r.serial)?,
    })
}

fn data_of(r: SessionRow) -> SessionData {
    SessionData {
        csrf: r.csrf,
        user: r.user_id,
        last_seen: r.last_seen,
        pending: r.pending.and_then(pending_of),
        done: r.done.and_then(done_of),
        cert_serial: r.cert_serial.as_deref().and_then(Serial::from_hex),
    }
}

impl Sessions {
    /// At most `max` sessions, `per_user` of them per user.
    pub fn new(store: Store, max: usize, per_user: usize) -> Self {
        Self {
            store,
            max: max.max(1),
            per_user: per_user.max(1),
        }
    }

    /// A new session at login (a fresh id: no fixation). A user's oldest
    /// session ends when they open one more than `per_user` (or one more at
    /// the bound of all); when all places are taken by others the login is
    /// refused, never someone else's session ended.
    pub(crate) async fn create(
        &self,
        user: UserId,
        now: OffsetDateTime,
        cert_serial: Option<Serial>,
    ) -> Result<(String, SessionData), CreateError> {
        let id = random_token();
        let row = SessionRow {
            id_hash: key(&id),
            user_id: user,
            csrf: random_token(),
            cert_serial: cert_serial.as_ref().map(Serial::to_hex),
            last_seen: now,
            pending: None,
            done: None,
        };
        match self
            .store
            .create_session(&row, self.per_user, self.max)
            .await
        {
            Ok(true) => Ok((id, data_of(row))),
            Ok(false) => Err(CreateError::Full),
            Err(e) => Err(CreateError::Store(e)),
        }
    }

    pub(crate) async fn get(&self, id: &str) -> Result<Option<SessionData>, StoreError> {
        Ok(self.store.session(&key(id)).await?.map(data_of))
    }

    /// Moves the idle clock of a session last seen at `seen` to `now`.
    pub(crate) async fn touch(
        &self,
        id: &str,
        seen: OffsetDateTime,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if now - seen < TOUCH_EVERY {
            return Ok(());
        }
        self.store.touch_session(&key(id), now).await
    }

    pub(crate) async fn remove(&self, id: &str) -> Result<(), StoreError> {
        self.store.delete_session(&key(id)).await.map(|_| ())
    }

    /// Sets (or clears) the pending BRSK019.
    pub(crate) async fn set_pending(
        &self,
        id: &str,
        p: Option<&Pending>,
    ) -> Result<(), StoreError> {
        let row = p.map(pending_row);
        self.store.set_session_pending(&key(id), row.as_ref()).await
    }

    /// Takes the pending revocation if `token` matches it: a second submit
    /// of the same form, on this server or another, finds nothing.
    pub(crate) async fn take_pending(
        &self,
        id: &str,
        token: &str,
    ) -> Result<Option<Pending>, StoreError> {
        Ok(self
            .store
            .take_session_pending(&key(id), |t| same_secret(t, token))
            .await?
            .and_then(pending_of))
    }

    pub(crate) async fn set_done(&self, id: &str, d: &RevocationDone) -> Result<(), StoreError> {
        let row = DoneRow {
            login_id: d.login_id.to_string(),
            name: d.name.clone(),
            state: d.state.label().to_owned(),
            serial: d.serial.to_hex(),
        };
        self.store.set_session_done(&key(id), Some(&row)).await
    }

    /// Ends sessions idle longer than `idle`; the users whose sessions
    /// ended, so their timeouts can be recorded.
    pub(crate) async fn expire_idle(
        &self,
        now: OffsetDateTime,
        idle: time::Duration,
    ) -> Result<Vec<UserId>, StoreError> {
        self.store.expire_sessions(now - idle).await
    }

    /// Number of live sessions, for tests.
    pub async fn len(&self) -> usize {
        self.count().await.unwrap_or(0)
    }

    /// Number of live sessions; `None` when the database does not answer.
    pub async fn count(&self) -> Option<usize> {
        self.store
            .session_count()
            .await
            .ok()
            .map(|n| usize::try_from(n).unwrap_or(0))
    }
}

/// The `Set-Cookie` value for a session id.
pub(crate) fn cookie(id: &str) -> String {
    format!("{SESSION_COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict")
}

/// The `Set-Cookie` value that removes the session cookie.
pub(crate) fn clear_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

fn cookie_value(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The session id in a request's `Cookie` headers, if any.
pub(crate) fn session_id(headers: &axum::http::HeaderMap) -> Option<String> {
    cookie_value(headers, SESSION_COOKIE)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The login forms' CSRF protection without server state: the browser gets
/// a cookie `issued.nonce.mac` (HMAC-SHA256 under a key every server on the
/// database shares) and the form carries a token derived from it. A POST is
/// accepted when the cookie's MAC holds, it is younger than the form's
/// lifetime, and the form's token matches the cookie.
pub(crate) struct LoginForm {
    key: aws_lc_rs::hmac::Key,
    lifetime: time::Duration,
}

impl LoginForm {
    pub(crate) fn new(secret: &[u8], lifetime: time::Duration) -> Self {
        Self {
            key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret),
            lifetime,
        }
    }

    fn mac(&self, what: &str, data: &str) -> String {
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.key);
        ctx.update(what.as_bytes());
        ctx.update(b"|");
        ctx.update(data.as_bytes());
        hex::encode(ctx.sign().as_ref())
    }

    /// A fresh cookie value for a login form shown at `now` (wall clock).
    pub(crate) fn issue(&self, now: OffsetDateTime) -> String {
        let mut nonce = [0u8; 16];
        rand::Rng::fill(&mut rand::rng(), &mut nonce[..]);
        let body = format!("{}.{}", now.unix_timestamp(), hex::encode(nonce));
        let mac = self.mac("form", &body);
        format!("{body}.{mac}")
    }

    /// The cookie value in `headers` if it is ours and still valid at `now`.
    pub(crate) fn valid_cookie(
        &self,
        headers: &axum::http::HeaderMap,
        now: OffsetDateTime,
    ) -> Option<String> {
        let v = cookie_value(headers, FORM_COOKIE)?;
        if v.len() > 200 {
            return None;
        }
        let (body, mac) = v.rsplit_once('.')?;
        if !same_secret(mac, &self.mac("form", body)) {
            return None;
        }
        let issued: i64 = body.split_once('.')?.0.parse().ok()?;
        let age = now.unix_timestamp() - issued;
        (age >= -60 && age <= self.lifetime.whole_seconds()).then_some(v)
    }

    /// The token the form carries for the cookie `value`.
    pub(crate) fn token(&self, value: &str) -> String {
        self.mac("csrf", value)
    }

    /// Does the POST's token match a valid cookie?
    pub(crate) fn accepts(
        &self,
        headers: &axum::http::HeaderMap,
        sent: Option<&str>,
        now: OffsetDateTime,
    ) -> bool {
        match (self.valid_cookie(headers, now), sent) {
            (Some(v), Some(t)) => same_secret(t, &self.token(&v)),
            _ => false,
        }
    }
}

/// The `Set-Cookie` value of a login form's cookie (it lives as long as the form).
pub(crate) fn form_cookie(value: &str, lifetime: time::Duration) -> String {
    format!(
        "{FORM_COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        lifetime.whole_seconds()
    )
}
