//! The portal's logged-in sessions: kept in the database by the SHA-256
//! (hex) of their ids, so any server on it serves any request and a copy
//! of the database opens no session. Each holds its CSRF token, the idle
//! clock, the certificate a 電子証明書方式 session was opened with, and the
//! state of the revocation flow between its screens (BRSK019, BRSK020).
//!
//! The logged-in sessions are bounded in all and per user; at the bound a
//! login is refused as busy, and nobody else's session ends for it. The
//! cookie that carries the id is the web's.

use crate::Db as _;
use shomei_core::{CertState, LoginId, Serial, UserId};
use shomei_store::{DoneRow, PendingRow, SessionRow, Store};
use time::OffsetDateTime;

use crate::{Result, RevocationDone, RevocationTarget, ServiceError};

/// BRSK019 waiting for 実行: the target and the token its form carries.
#[derive(Debug, Clone)]
pub struct WaitingRevocation {
    /// The one-time token the 実行 form must bring back.
    pub token: String,
    /// The certificate to be revoked, and its user.
    pub target: RevocationTarget,
}

/// A logged-in session as a request finds it.
#[derive(Debug, Clone)]
pub struct SessionData {
    /// The token every form of this session carries (CSRF).
    pub csrf: String,
    /// The logged-in user.
    pub user: UserId,
    /// The last request, from which the idle timeout counts.
    pub last_seen: OffsetDateTime,
    /// BRSK019 waiting for 実行.
    pub pending: Option<WaitingRevocation>,
    /// BRSK020's content.
    pub done: Option<RevocationDone>,
    /// The certificate a 電子証明書方式 session was opened with; its
    /// revocation ends the session.
    pub cert_serial: Option<Serial>,
}

/// Why no session was opened at a login.
#[derive(Debug, thiserror::Error)]
pub enum SessionOpenError {
    /// Every logged-in session place is taken (`max_sessions`).
    #[error("every logged-in session place is taken")]
    Full,
    /// Our own trouble (the database), not the user's.
    #[error(transparent)]
    Internal(#[from] ServiceError),
}

/// The logged-in sessions (see the module's note); [`crate::Shomei::sessions`].
pub struct Sessions {
    store: Store,
    max: usize,
    per_user: usize,
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

fn random_id() -> String {
    let mut b = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut b[..]);
    hex::encode(b)
}

fn pending_row(p: &WaitingRevocation) -> PendingRow {
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

fn pending_of(r: PendingRow) -> Option<WaitingRevocation> {
    Some(WaitingRevocation {
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
    pub(crate) fn new(store: Store, max: usize, per_user: usize) -> Self {
        Self {
            store,
            max: max.max(1),
            per_user: per_user.max(1),
        }
    }

    /// A new session at login (a fresh id: no fixation), its id and data.
    /// A user's oldest session ends when they open one more than
    /// `per_user` (or one more at the bound of all); when all places are
    /// taken by others the login is refused, never someone else's session
    /// ended. A returning customer's (`returning`) takes SQLite's next
    /// writer turn.
    pub async fn create(
        &self,
        user: UserId,
        now: OffsetDateTime,
        cert_serial: Option<Serial>,
        returning: bool,
    ) -> std::result::Result<(String, SessionData), SessionOpenError> {
        let id = random_id();
        let row = SessionRow {
            id_hash: key(&id),
            user_id: user,
            csrf: random_id(),
            cert_serial: cert_serial.as_ref().map(Serial::to_hex),
            last_seen: now,
            pending: None,
            done: None,
        };
        let created = if returning {
            self.store
                .create_session_first(&row, self.per_user, self.max)
                .await
        } else {
            self.store
                .create_session(&row, self.per_user, self.max)
                .await
        };
        match created {
            Ok(true) => Ok((id, data_of(row))),
            Ok(false) => Err(SessionOpenError::Full),
            Err(e) => Err(SessionOpenError::Internal(crate::DatabaseError(e).into())),
        }
    }

    /// The session with this id, if it is open.
    pub async fn get(&self, id: &str) -> Result<Option<SessionData>> {
        Ok(self.store.session(&key(id)).await.db()?.map(data_of))
    }

    /// Moves the idle clock of a session last seen at `seen` to `now`.
    pub async fn touch(&self, id: &str, seen: OffsetDateTime, now: OffsetDateTime) -> Result<()> {
        if now - seen < TOUCH_EVERY {
            return Ok(());
        }
        Ok(self.store.touch_session(&key(id), now).await.db()?)
    }

    /// Ends the session (ログアウト, a new login from the same browser).
    pub async fn remove(&self, id: &str) -> Result<()> {
        self.store.delete_session(&key(id)).await.db()?;
        Ok(())
    }

    /// Sets (or clears) the pending BRSK019.
    pub async fn set_pending(&self, id: &str, p: Option<&WaitingRevocation>) -> Result<()> {
        let row = p.map(pending_row);
        Ok(self
            .store
            .set_session_pending(&key(id), row.as_ref())
            .await
            .db()?)
    }

    /// Takes the pending revocation if `token` matches it: a second submit
    /// of the same form, on this server or another, finds nothing.
    pub async fn take_pending(&self, id: &str, token: &str) -> Result<Option<WaitingRevocation>> {
        let same = |t: &str| {
            aws_lc_rs::constant_time::verify_slices_are_equal(t.as_bytes(), token.as_bytes())
                .is_ok()
        };
        Ok(self
            .store
            .take_session_pending(&key(id), same)
            .await
            .db()?
            .and_then(pending_of))
    }

    /// Keeps BRSK020's content.
    pub async fn set_done(&self, id: &str, d: &RevocationDone) -> Result<()> {
        let row = DoneRow {
            login_id: d.login_id.to_string(),
            name: d.name.clone(),
            state: d.state.label().to_owned(),
            serial: d.serial.to_hex(),
        };
        Ok(self
            .store
            .set_session_done(&key(id), Some(&row))
            .await
            .db()?)
    }

    /// Ends sessions idle longer than `idle`; the users whose sessions
    /// ended, so their timeouts can be recorded.
    pub async fn expire_idle(
        &self,
        now: OffsetDateTime,
        idle: time::Duration,
    ) -> Result<Vec<UserId>> {
        Ok(self.store.expire_sessions(now - idle).await.db()?)
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

impl crate::Shomei {
    /// The portal's logged-in sessions.
    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// The key the login forms', device cookies' and console sessions'
    /// signed cookies are made with: made by the first server on the
    /// database, the same for every server on it.
    pub async fn login_form_secret(&self) -> Result<Vec<u8>> {
        let mut fresh = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut fresh[..]);
        Ok(self
            .store
            .shared_secret("login-form-key", &fresh)
            .await
            .db()?)
    }
}

#[cfg(test)]
mod tests {
    use super::{key, random_id};

    #[test]
    fn sessions_are_kept_by_the_hash_of_their_id() {
        let id = "00".repeat(32);
        let k = key(&id);
        assert_eq!(k.len(), 64);
        assert_ne!(k, id);
        assert_eq!(k, key(&id));
        assert_ne!(k, key(&"01".repeat(32)));
        let fresh = random_id();
        assert_eq!(fresh.len(), 64);
        assert!(fresh.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(fresh, random_id());
    }
}
