//! Server-side sessions of logged-in users: a random id in a `__Host-`
//! cookie (Secure, HttpOnly, SameSite=Strict), a CSRF token, the idle clock,
//! and the state of the revocation flow between its screens.
//!
//! Anonymous visitors hold no state here: the login forms carry a signed
//! token instead ([`LoginForm`]), so no flood of visitors can push a
//! logged-in session out. The logged-in sessions are bounded in all and per
//! user; at the bound a login is refused as busy, and nobody else's session
//! ends for it.

use std::collections::HashMap;
use std::sync::Mutex;

use shomei_core::UserId;
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
    pub cert_serial: Option<shomei_core::Serial>,
}

/// Sessions by the SHA-256 (hex) of their id: the map, and what a graceful
/// stop hands over to the next start, never hold an id a cookie could use.
pub struct Sessions {
    map: Mutex<HashMap<String, SessionData>>,
    max: usize,
    per_user: usize,
}

/// Every logged-in session place is taken (`max_sessions`).
#[derive(Debug)]
pub(crate) struct SessionsFull;

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

impl Sessions {
    /// At most `max` sessions, `per_user` of them per user.
    pub fn new(max: usize, per_user: usize) -> Self {
        Self {
            map: Mutex::default(),
            max: max.max(1),
            per_user: per_user.max(1),
        }
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, SessionData>) -> R) -> R {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut m)
    }

    /// A new session at login (a fresh id: no fixation). A user's oldest
    /// session ends when they open one more than `per_user` (or one more at
    /// the bound of all); when all places are taken by others the login is
    /// refused, never someone else's session ended.
    pub(crate) fn create(
        &self,
        user: UserId,
        now: OffsetDateTime,
    ) -> Result<(String, SessionData), SessionsFull> {
        let id = random_token();
        let data = SessionData {
            csrf: random_token(),
            user,
            last_seen: now,
            pending: None,
            done: None,
            cert_serial: None,
        };
        self.with(|m| {
            let mut own: Vec<(OffsetDateTime, String)> = m
                .iter()
                .filter(|(_, s)| s.user == user)
                .map(|(k, s)| (s.last_seen, k.clone()))
                .collect();
            own.sort();
            // Over their own bound, or at the bound of all with a session of
            // their own: the user's oldest session makes room.
            let surplus = if own.len() >= self.per_user {
                own.len() + 1 - self.per_user
            } else {
                usize::from(m.len() >= self.max && !own.is_empty())
            };
            for (_, k) in own.iter().take(surplus) {
                m.remove(k);
            }
            if m.len() >= self.max {
                return Err(SessionsFull);
            }
            m.insert(key(&id), data.clone());
            Ok(())
        })?;
        Ok((id, data))
    }

    pub(crate) fn get(&self, id: &str) -> Option<SessionData> {
        self.with(|m| m.get(&key(id)).cloned())
    }

    pub(crate) fn update<R>(&self, id: &str, f: impl FnOnce(&mut SessionData) -> R) -> Option<R> {
        self.with(|m| m.get_mut(&key(id)).map(f))
    }

    pub(crate) fn remove(&self, id: &str) -> Option<SessionData> {
        self.with(|m| m.remove(&key(id)))
    }

    /// Takes the pending revocation if `token` matches it: a second submit
    /// of the same form finds nothing.
    pub(crate) fn take_pending(&self, id: &str, token: &str) -> Option<Pending> {
        self.with(|m| {
            let s = m.get_mut(&key(id))?;
            match &s.pending {
                Some(p) if same_secret(&p.token, token) => s.pending.take(),
                _ => None,
            }
        })
    }

    /// The logged-in sessions, for the next start (screens in progress,
    /// such as a pending revocation, are not carried over).
    pub fn hand_over(&self) -> Vec<shomei_service::HandedSession> {
        self.with(|m| {
            m.iter()
                .map(|(k, s)| shomei_service::HandedSession {
                    id_hash: k.clone(),
                    user_id: s.user,
                    csrf: s.csrf.clone(),
                    cert_serial: s.cert_serial.clone(),
                    last_seen: s.last_seen,
                })
                .collect()
        })
    }

    /// Takes over sessions handed over by the last stop.
    pub fn take_over(&self, handed: Vec<shomei_service::HandedSession>) {
        self.with(|m| {
            for h in handed {
                m.insert(
                    h.id_hash,
                    SessionData {
                        csrf: h.csrf,
                        user: h.user_id,
                        last_seen: h.last_seen,
                        pending: None,
                        done: None,
                        cert_serial: h.cert_serial,
                    },
                );
            }
        })
    }

    /// Number of live sessions, for tests and metrics.
    pub fn len(&self) -> usize {
        self.with(|m| m.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
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

impl Sessions {
    /// Removes sessions idle longer than `idle`; returns the users whose
    /// logged-in sessions ended, so their timeouts can be recorded.
    pub(crate) fn expire_idle(&self, now: OffsetDateTime, idle: time::Duration) -> Vec<UserId> {
        self.with(|m| {
            let mut ended = Vec::new();
            m.retain(|_, s| {
                let keep = now - s.last_seen <= idle;
                if !keep {
                    ended.push(s.user);
                }
                keep
            });
            ended
        })
    }
}
