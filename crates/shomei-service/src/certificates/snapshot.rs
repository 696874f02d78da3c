//! The revocation set's snapshot in the data directory, so that a restart
//! does not read a million revoked certificates again.
//!
//! After CRL publication (at start, then at most every `EVERY` while
//! revocations come, and at a graceful stop) the server writes its set
//! beside the revocation log position it holds: the newest entry's id and
//! serial, and how many certificates the database had revoked there. At
//! start the snapshot is taken only when the log still shows that position
//! with that serial (not a restored or another database), keeps every entry
//! after it (none pruned unseen), and the revoked count grew by exactly the
//! certificates logged since (nothing revoked past the log); the entries
//! after it are then read into the set before anything is served. Anything
//! else, or a file that is not exactly as written, reads the whole set from
//! the database as before: the node is never ready with a stale set.

use crate::Db as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::certificates::revset::{Listed, RevocationSet};
use crate::{Result, Revocation, ServiceError, Shomei};

/// The snapshot's file in the data directory.
pub(crate) const FILE: &str = "revocation-set.snapshot";
const MAGIC: &[u8; 24] = b"shomei revocation set 2\n";
/// While revocations come, a snapshot is written again at most this often
/// (the log keeps entries for an hour; a restart reads what came since).
const EVERY: std::time::Duration = std::time::Duration::from_secs(300);
/// Magic, CA digest, position, count, the serial's length and 40 hex digits.
const HEADER: usize = 24 + 32 + 8 + 8 + 1 + 40;
const DIGEST: usize = 32;

/// Where the snapshot is and what this process last wrote into it.
pub(crate) struct Snapshots {
    path: PathBuf,
    /// When this process last wrote it, and at which log position.
    written: Mutex<Option<(std::time::Instant, i64)>>,
    /// Did this process start from it?
    started_from: AtomicBool,
}

impl Snapshots {
    pub(crate) fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join(FILE),
            written: Mutex::new(None),
            started_from: AtomicBool::new(false),
        }
    }
}

/// What a snapshot file says, before the database is asked.
struct Read {
    position: i64,
    revoked: i64,
    serial: String,
    set: RevocationSet,
}

fn sha256(b: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, b);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The file's contents, or why they are not a snapshot of this CA's set.
/// The set keeps the file's octets as its sorted records.
fn parse(b: Vec<u8>, ca: &[u8; 32]) -> std::result::Result<Read, &'static str> {
    if b.len() < HEADER + DIGEST || &b[..24] != MAGIC {
        return Err("not a revocation set snapshot of this version");
    }
    let (body, digest) = b.split_at(b.len() - DIGEST);
    if sha256(body) != digest {
        return Err("its digest does not match (cut short or changed)");
    }
    if &body[24..56] != ca {
        return Err("written for another issuing CA");
    }
    let word = |at: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&body[at..at + 8]);
        i64::from_le_bytes(w)
    };
    let (position, revoked) = (word(56), word(64));
    let len = usize::from(body[72]);
    let serial = std::str::from_utf8(&body[73..73 + len.min(40)])
        .map_err(|_| "its serial is not text")?
        .to_string();
    let end = body.len();
    let set = RevocationSet::decode(b, HEADER, end).ok_or("its entries do not read back")?;
    Ok(Read {
        position,
        revoked,
        serial,
        set,
    })
}

impl Shomei {
    /// Did this server start from the snapshot (rather than reading every
    /// revoked certificate from the database)?
    pub fn started_from_revocation_snapshot(&self) -> bool {
        self.snapshots.started_from.load(Ordering::SeqCst)
    }

    fn ca_digest(&self) -> [u8; 32] {
        sha256(self.ca.issuing_der())
    }

    /// The revocation set from the snapshot, topped up from the log, with
    /// the last log entry it holds; `None` (and why, in the log) when the
    /// snapshot is missing or cannot be shown current.
    pub(crate) async fn revocations_from_snapshot(&self) -> Result<Option<(RevocationSet, i64)>> {
        let path = self.snapshots.path.clone();
        let ca = self.ca_digest();
        let read = tokio::task::spawn_blocking(move || match std::fs::read(&path) {
            Ok(b) => Ok(Some(parse(b, &ca))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ServiceError::DataDir { path, source }),
        })
        .await??;
        let refuse = |why: &str| {
            tracing::warn!(
                path = %self.snapshots.path.display(),
                why,
                "revocation set snapshot not used; reading every revoked certificate from the database"
            );
            Ok(None)
        };
        let read = match read {
            None => return Ok(None),
            Some(Err(why)) => return refuse(why),
            Some(Ok(r)) => r,
        };
        let at = self
            .store
            .revocation_log_position(Some(read.position))
            .await
            .db()?;
        let logged = at.entry.as_ref().map(|(_, s)| s.as_str());
        if read.position > 0 && logged != Some(read.serial.as_str()) {
            return refuse(
                "the revocation log does not hold its position with its serial (a restored or another database)",
            );
        }
        if at.head > read.position && at.tail > read.position + 1 {
            return refuse("revocation log entries after its position were pruned");
        }
        if at.revoked != read.revoked + at.revoked_after {
            return refuse(
                "the database's revoked certificates are not those of the snapshot and the log after it",
            );
        }
        let mut set = read.set;
        let mut after = read.position;
        let mut topped = 0usize;
        loop {
            let logged = self.store.revocations_after(after).await.db()?;
            let Some(last) = logged.last().map(|r| r.log_id) else {
                break;
            };
            for r in logged {
                topped += usize::from(set.insert(
                    r.serial.as_bytes(),
                    Revocation {
                        at: r.revoked_at,
                        reason: r.reason,
                        invalidity: r.invalidity,
                    },
                    Listed {
                        scope: r.scope,
                        not_after: r.not_after.map_or(i64::MAX, |t| t.unix_timestamp()),
                    },
                ));
            }
            after = last;
        }
        tracing::info!(
            position = read.position,
            from_log = topped,
            "revocation set read from its snapshot and the log after it"
        );
        self.snapshots.started_from.store(true, Ordering::SeqCst);
        if let Ok(mut w) = self.snapshots.written.lock() {
            // The file holds the set up to its position; what came after
            // is written with the next snapshot.
            *w = Some((std::time::Instant::now(), read.position));
        }
        Ok(Some((set, after)))
    }

    /// Writes the snapshot: the set as it stands, at the log's head (read
    /// first; the set is brought up to it). Written beside and renamed
    /// over, so a crash leaves the old file or the new one.
    pub(crate) async fn keep_revocation_snapshot(&self) -> Result<()> {
        let at = self.store.revocation_log_position(None).await.db()?;
        if self.log_seen() < at.head {
            self.catch_up_from_log().await?;
        }
        if self.log_seen() < at.head {
            // Entries were pruned unseen: the watch reloads the set, and a
            // later snapshot is written from that.
            return Ok(());
        }
        let serial = at.entry.map(|(_, s)| s).unwrap_or_default();
        if serial.len() > 40 {
            return Err(ServiceError::Crl(format!(
                "revocation log serial {serial:?} is longer than a serial"
            )));
        }
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.ca_digest());
        out.extend_from_slice(&at.head.to_le_bytes());
        out.extend_from_slice(&at.revoked.to_le_bytes());
        out.push(serial.len() as u8);
        let mut padded = [0u8; 40];
        padded[..serial.len()].copy_from_slice(serial.as_bytes());
        out.extend_from_slice(&padded);
        self.revoked
            .read()
            .map_err(|_| ServiceError::Crl("revocation set lock poisoned".into()))?
            .encode_into(&mut out);
        let path = self.snapshots.path.clone();
        let bytes = out.len();
        tokio::task::spawn_blocking(move || {
            let digest = sha256(&out);
            out.extend_from_slice(&digest);
            let tmp = path.with_extension("tmp");
            let written = (|| {
                use std::io::Write;
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(&out)?;
                f.sync_all()?;
                std::fs::rename(&tmp, &path)
            })();
            written.map_err(|source| ServiceError::DataDir { path, source })
        })
        .await??;
        if let Ok(mut w) = self.snapshots.written.lock() {
            *w = Some((std::time::Instant::now(), at.head));
        }
        tracing::debug!(position = at.head, bytes, "revocation set snapshot written");
        Ok(())
    }

    /// Writes the snapshot again when revocations came since the last one
    /// and it is `EVERY` old (upkeep), or at once with `now` (a graceful
    /// stop).
    pub async fn keep_revocation_snapshot_if_behind(&self, now: bool) -> Result<()> {
        let due = match self.snapshots.written.lock().ok().and_then(|w| *w) {
            None => true,
            Some((when, position)) => {
                self.log_seen() > position && (now || when.elapsed() >= EVERY)
            }
        };
        if due {
            self.keep_revocation_snapshot().await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_not_exactly_as_written_is_refused() {
        let ca = [7u8; 32];
        let mut set = RevocationSet::default();
        set.insert(
            &[1, 2, 3],
            Revocation {
                at: time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
                reason: Some(1),
                invalidity: None,
            },
            Listed {
                scope: shomei_core::CrlScope::Partition(2),
                not_after: 1_900_000_000,
            },
        );
        let mut b = Vec::new();
        b.extend_from_slice(MAGIC);
        b.extend_from_slice(&ca);
        b.extend_from_slice(&9i64.to_le_bytes());
        b.extend_from_slice(&5i64.to_le_bytes());
        b.push(6);
        let mut serial = [0u8; 40];
        serial[..6].copy_from_slice(b"0a0b0c");
        b.extend_from_slice(&serial);
        set.encode_into(&mut b);
        let digest = sha256(&b);
        b.extend_from_slice(&digest);
        let r = parse(b.clone(), &ca).expect("as written");
        assert_eq!((r.position, r.revoked, r.serial.as_str()), (9, 5, "0a0b0c"));
        assert!(r.set.contains(&[1, 2, 3]));
        assert_eq!(
            parse(b.clone(), &[8u8; 32]).err(),
            Some("written for another issuing CA")
        );
        let mut changed = b.clone();
        changed[HEADER + 30] ^= 1;
        assert_eq!(
            parse(changed, &ca).err(),
            Some("its digest does not match (cut short or changed)")
        );
        assert_eq!(
            parse(b[..b.len() - 1].to_vec(), &ca).err(),
            Some("its digest does not match (cut short or changed)")
        );
        assert_eq!(
            parse(b"short".to_vec(), &ca).err(),
            Some("not a revocation set snapshot of this version")
        );
    }
}
