//! Server-side sessions: a random id in a `__Host-` cookie (Secure, HttpOnly,
//! SameSite=Strict), a CSRF token, the idle clock, and the state of the
//! revocation flow between its screens.

use std::collections::HashMap;
use std::sync::Mutex;

use shomei_core::UserId;
use shomei_service::{RevocationDone, RevocationTarget};
use time::OffsetDateTime;

pub const SESSION_COOKIE: &str = "__Host-shomei";

/// Anonymous sessions (login page) beyond this many are pruned oldest-first.
const MAX_SESSIONS: usize = 100_000;

#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub token: String,
    pub target: RevocationTarget,
}

#[derive(Debug, Clone)]
pub(crate) struct SessionData {
    pub csrf: String,
    pub user: Option<UserId>,
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
#[derive(Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, SessionData>>,
}

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
    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, SessionData>) -> R) -> R {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut m)
    }

    /// A new session; `user` is set at login (a fresh id: no fixation).
    pub(crate) fn create(
        &self,
        user: Option<UserId>,
        now: OffsetDateTime,
    ) -> (String, SessionData) {
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
            if m.len() >= MAX_SESSIONS {
                let idle: Vec<String> = {
                    let mut v: Vec<_> = m.iter().map(|(k, s)| (s.last_seen, k.clone())).collect();
                    v.sort();
                    v.into_iter()
                        .take(MAX_SESSIONS / 10)
                        .map(|(_, k)| k)
                        .collect()
                };
                for k in idle {
                    m.remove(&k);
                }
            }
            m.insert(key(&id), data.clone());
        });
        (id, data)
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
                .filter_map(|(k, s)| {
                    Some(shomei_service::HandedSession {
                        id_hash: k.clone(),
                        user_id: s.user?,
                        csrf: s.csrf.clone(),
                        cert_serial: s.cert_serial.clone(),
                        last_seen: s.last_seen,
                    })
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
                        user: Some(h.user_id),
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

/// The session id in a request's `Cookie` headers, if any.
pub(crate) fn session_id(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_owned())
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl Sessions {
    /// Removes sessions idle longer than `idle`; returns the users whose
    /// logged-in sessions ended, so their timeouts can be recorded.
    pub(crate) fn expire_idle(&self, now: OffsetDateTime, idle: time::Duration) -> Vec<UserId> {
        self.with(|m| {
            let mut ended = Vec::new();
            m.retain(|_, s| {
                let keep = now - s.last_seen <= idle;
                if !keep && let Some(u) = s.user {
                    ended.push(u);
                }
                keep
            });
            ended
        })
    }
}
