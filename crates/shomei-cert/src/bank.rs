//! The app's work with the bank and the PC's stores: what certificates are
//! here and in what state (証明書取得), issuing or renewing into every
//! store, and clearing this bank's older certificates afterwards. The window
//! sees it through the `Bank` trait, so its tests can put any answer there;
//! the command line calls the same `RealBank::issue_as` and
//! `RealBank::renew_with`, its PKCS#12 file one more store, so whatever
//! either face issued the other finds, names and renews alike.

use std::collections::BTreeMap;

use crate::enroll::{self, Target};
use crate::fail::Fail;
use crate::keep::Keep;
use crate::store::CertStore;
use crate::{est, text};

/// The steps the guide's stepper shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// 個人認証
    Auth,
    /// 証明書取得
    Obtain,
    /// 処理中
    Process,
    /// 取得完了
    Done,
}

impl Step {
    pub const ALL: [Step; 4] = [Step::Auth, Step::Obtain, Step::Process, Step::Done];

    pub fn label(self) -> &'static str {
        match self {
            Step::Auth => "個人認証",
            Step::Obtain => "証明書取得",
            Step::Process => "処理中",
            Step::Done => "取得完了",
        }
    }
}

/// A certificate of this bank found on the PC, once, whatever the number of
/// stores that hold it.
#[derive(Clone, Debug, PartialEq)]
pub struct Found {
    pub login_id: String,
    pub serial_hex: String,
    pub not_after: String,
    /// The bank's label: 発行済, 更新可, 有効期限切れ, 失効済…
    pub state: String,
    pub renewable: bool,
}

/// What the 結果 screen tells.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub login_id: String,
    pub state: String,
    pub not_after: String,
    pub stored_in: Vec<String>,
    pub removed: Vec<String>,
}

/// What the window asks of the bank and the PC. Each call blocks; the
/// window runs it on a worker thread.
pub trait Bank: Send + Sync + 'static {
    /// This bank's certificates in the PC's stores, with their state.
    fn survey(&self) -> Result<Vec<Found>, Fail>;
    /// 証明書発行 with login ID and password.
    fn issue(
        &self,
        login_id: &str,
        password: &str,
        progress: &mut dyn FnMut(Step),
    ) -> Result<Outcome, Fail>;
    /// 証明書更新 of a 更新可 certificate found here.
    fn renew(&self, serial_hex: &str, progress: &mut dyn FnMut(Step)) -> Result<Outcome, Fail>;
}

/// The real thing: the bank's servers and this user's stores.
pub struct RealBank {
    pub target: Target,
    pub stores: Vec<Box<dyn CertStore>>,
    pub keep: Keep,
}

/// A certificate issued or renewed and put in every store: the 結果 screen's
/// outcome and what the certificate says (the command line prints it).
pub struct Done {
    pub outcome: Outcome,
    pub info: enroll::CertInfo,
}

/// The name a certificate gets in every store: one per certificate, since
/// NSS files one subject's certificates under one nickname.
pub fn nickname(info: &enroll::CertInfo) -> String {
    format!("Shomei {} {}", info.cn, info.serial_hex)
}

/// One of this bank's certificates in one store.
struct Here {
    store: usize,
    nickname: String,
    der: Vec<u8>,
    info: enroll::CertInfo,
}

impl RealBank {
    /// This user's stores and keeping, for the bank of `target`.
    pub fn of_user(target: Target) -> Self {
        RealBank {
            stores: crate::store::stores(&target.bank),
            target,
            keep: Keep::of_user(),
        }
    }

    fn ca_subjects(&self) -> Result<Vec<Vec<u8>>, Fail> {
        let est = est::Est::new(&self.target.root_pem, None)?;
        let cas = enroll::block_on(est.cacerts(&self.target.server))?;
        Ok(cas.iter().filter_map(|c| enroll::subject_raw(c)).collect())
    }

    /// The certificates in every store that this bank's CAs issued.
    fn here(&self, ca_subjects: &[Vec<u8>]) -> Result<Vec<Here>, Fail> {
        let mut out = Vec::new();
        for (i, s) in self.stores.iter().enumerate() {
            for c in s.list()? {
                let Ok(info) = enroll::info(&c.der) else {
                    continue;
                };
                if ca_subjects.contains(&info.issuer_raw) {
                    out.push(Here {
                        store: i,
                        nickname: c.nickname,
                        der: c.der,
                        info,
                    });
                }
            }
        }
        Ok(out)
    }

    fn states(
        &self,
        serials: impl Iterator<Item = String>,
    ) -> Result<BTreeMap<String, est::State>, Fail> {
        let est = est::Est::new(&self.target.root_pem, None)?;
        let mut out = BTreeMap::new();
        for s in serials {
            if out.contains_key(&s) {
                continue;
            }
            let st = enroll::block_on(est.status(&self.target.server, &s))?;
            out.insert(s, st);
        }
        Ok(out)
    }

    fn prepare(&self) -> Result<(), Fail> {
        self.stores.iter().try_for_each(|s| s.prepare())
    }

    /// Keeps the key for renewal and puts the certificate in every store;
    /// if one refuses, takes it out of those that took it, so nothing is
    /// left half-done.
    pub fn save(
        &self,
        key: &[u8],
        cert: &[u8],
        chain: &[Vec<u8>],
        info: &enroll::CertInfo,
    ) -> Result<Vec<String>, Fail> {
        let nickname = nickname(info);
        // A store that signs with its own key needs no copy of it kept.
        let keep = self.stores.iter().any(|s| !s.signs());
        if keep {
            self.keep
                .put(&info.serial_hex, key, cert)
                .map_err(|e| Fail::Local(text::saved_nowhere("", e.message())))?;
        }
        for (i, s) in self.stores.iter().enumerate() {
            if let Err(e) = s.add(key, cert, chain, &nickname, &self.target.root_pem) {
                for done in &self.stores[..i] {
                    let _ = done.remove(&nickname);
                }
                self.keep.forget(&info.serial_hex);
                return Err(Fail::Local(text::saved_nowhere(
                    &format!("（{}）", s.place()),
                    e.message(),
                )));
            }
        }
        Ok(self.stores.iter().map(|s| s.place()).collect())
    }

    /// Removes this bank's older certificates: the same user's superseded
    /// ones, and any expired or revoked one. Says what went.
    ///
    /// NSS files certificates of one subject under one nickname, so the same
    /// user's older ones go first (`same_user`), before the new one is
    /// added; the others (expired, revoked) after.
    pub fn clear_old(&self, new: &enroll::CertInfo, same_user: bool) -> Vec<String> {
        let Ok(cas) = self.ca_subjects() else {
            return Vec::new();
        };
        let Ok(here) = self.here(&cas) else {
            return Vec::new();
        };
        let old: Vec<&Here> = here
            .iter()
            .filter(|h| h.info.serial_hex != new.serial_hex && (h.info.cn == new.cn) == same_user)
            .collect();
        let states = self
            .states(old.iter().map(|h| h.info.serial_hex.clone()))
            .unwrap_or_default();
        let mut removed = Vec::new();
        for h in old {
            let state = states.get(&h.info.serial_hex);
            let why = if h.info.cn == new.cn {
                Some("旧証明書")
            } else if h.info.expired || state.is_some_and(|s| s.code == "expired") {
                Some("有効期限切れ")
            } else if state.is_some_and(|s| s.code == "revoked") {
                Some("失効済")
            } else {
                None
            };
            let Some(why) = why else { continue };
            if self.stores[h.store].remove(&h.nickname).is_ok() {
                self.keep.forget(&h.info.serial_hex);
                removed.push(format!(
                    "{}（{}、シリアル {}、有効期限 {}）を {} から削除しました",
                    h.info.cn,
                    why,
                    h.info.serial_hex,
                    h.info.not_after_ja,
                    self.stores[h.store].place()
                ));
            }
        }
        removed
    }

    fn finish(&self, got: enroll::Obtained, progress: &mut dyn FnMut(Step)) -> Result<Done, Fail> {
        progress(Step::Process);
        let mut removed = self.clear_old(&got.info, true);
        let stored_in = self.save(&got.key.serialize_der(), &got.cert, &got.chain, &got.info)?;
        removed.extend(self.clear_old(&got.info, false));
        let state = self
            .states(std::iter::once(got.info.serial_hex.clone()))
            .ok()
            .and_then(|m| m.into_values().next())
            .map(|s| s.label)
            .unwrap_or_else(|| "発行済".into());
        progress(Step::Done);
        Ok(Done {
            outcome: Outcome {
                login_id: got.info.cn.clone(),
                state,
                not_after: got.info.not_after_ja.clone(),
                stored_in,
                removed,
            },
            info: got.info,
        })
    }

    /// 証明書発行 with login ID and password: a new key of `kind` made
    /// here, the certificate put in every store under its `nickname` and
    /// its key kept for renewal.
    pub fn issue_as(
        &self,
        login_id: &str,
        password: &str,
        kind: enroll::KeyType,
        progress: &mut dyn FnMut(Step),
    ) -> Result<Done, Fail> {
        progress(Step::Auth);
        enroll::check_login_id(login_id)?;
        if password.is_empty() {
            return Err(Fail::Usage(text::EMPTY_PASSWORD.into()));
        }
        self.prepare()?;
        progress(Step::Obtain);
        let got = enroll::block_on(enroll::obtain(&self.target, login_id, password, kind))?;
        self.finish(got, progress)
    }

    /// 証明書更新 authenticated by `cert` and its key: the new certificate
    /// in every store, the old one cleared from them and its kept key
    /// forgotten (the bank supersedes it).
    pub fn renew_with(
        &self,
        current: enroll::CurrentKey<'_>,
        cert: &[u8],
        progress: &mut dyn FnMut(Step),
    ) -> Result<Done, Fail> {
        progress(Step::Auth);
        let old = enroll::info(cert)?;
        self.prepare()?;
        progress(Step::Obtain);
        let got = enroll::block_on(enroll::reobtain(&self.target, current, cert))?;
        let done = self.finish(got, progress)?;
        self.keep.forget(&old.serial_hex);
        Ok(done)
    }
}

impl Bank for RealBank {
    fn survey(&self) -> Result<Vec<Found>, Fail> {
        let cas = self.ca_subjects()?;
        let here = self.here(&cas)?;
        let states = self.states(here.iter().map(|h| h.info.serial_hex.clone()))?;
        let mut seen = Vec::new();
        let mut out: Vec<Found> = Vec::new();
        for h in &here {
            if seen.contains(&h.info.serial_hex) {
                continue;
            }
            seen.push(h.info.serial_hex.clone());
            let st = states.get(&h.info.serial_hex);
            out.push(Found {
                login_id: h.info.cn.clone(),
                serial_hex: h.info.serial_hex.clone(),
                not_after: h.info.not_after_ja.clone(),
                state: st.map(|s| s.label.clone()).unwrap_or_default(),
                renewable: st.is_some_and(|s| s.code == "renewable"),
            });
        }
        Ok(out)
    }

    fn issue(
        &self,
        login_id: &str,
        password: &str,
        progress: &mut dyn FnMut(Step),
    ) -> Result<Outcome, Fail> {
        self.issue_as(login_id, password, crate::store::KEY_TYPE, progress)
            .map(|d| d.outcome)
    }

    /// The certificate as a store has it, with the key that store signs
    /// with, else the key kept beside it.
    fn renew(&self, serial_hex: &str, progress: &mut dyn FnMut(Step)) -> Result<Outcome, Fail> {
        let cas = self.ca_subjects()?;
        let here = self.here(&cas)?;
        let Some(h) = here.iter().find(|h| h.info.serial_hex == serial_hex) else {
            return Err(Fail::Usage(text::NO_RENEWABLE.into()));
        };
        if let Some(signer) = self.stores[h.store].signer(&h.der) {
            let current = enroll::CurrentKey::InStore(signer?);
            return self
                .renew_with(current, &h.der, progress)
                .map(|d| d.outcome);
        }
        let id = self
            .keep
            .get(serial_hex)
            .ok_or(Fail::Usage(text::NOT_KEPT.into()))?;
        self.renew_with(enroll::CurrentKey::Pkcs8(&id.key_pkcs8), &id.cert, progress)
            .map(|d| d.outcome)
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;

    use super::*;
    use crate::store::Nss;

    /// A bank at a loopback port that only counts who connects, and this
    /// user's store in `nssdb`.
    fn bank_at(
        listener: &TcpListener,
        nssdb: std::path::PathBuf,
        keep: &std::path::Path,
    ) -> RealBank {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let root = rcgen::CertificateParams::new(vec![])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let url = format!(
            "https://127.0.0.1:{}",
            listener.local_addr().unwrap().port()
        );
        RealBank {
            target: Target {
                bank: "test".into(),
                server: url.clone(),
                cert_server: url,
                root_pem: root.pem().into_bytes(),
            },
            stores: vec![Box::new(Nss::new(nssdb, "Chromium"))],
            keep: Keep::new(keep.to_owned()),
        }
    }

    /// The README: "a store that cannot be written, checked before the bank
    /// is asked". Issuing into a store that cannot be made is refused with
    /// its message and nothing reaches the bank; into one that can, the same
    /// call goes to the bank (the control: it connects, and fails when the
    /// bank hangs up).
    #[test]
    fn a_store_that_cannot_be_written_is_refused_before_the_bank_is_asked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("file"), b"x").unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let bank = bank_at(&listener, dir.path().join("file/nssdb"), dir.path());
        let e = bank
            .issue("jirodt", "Shomei#Demo1", &mut |_| {})
            .unwrap_err();
        assert!(
            matches!(e, Fail::Local(_)) && e.message().starts_with("電子証明書の保存先（"),
            "{}",
            e.message()
        );
        assert_eq!(
            listener.accept().map(|_| ()).unwrap_err().kind(),
            std::io::ErrorKind::WouldBlock,
            "nothing reached the bank"
        );

        let bank = bank_at(&listener, dir.path().join("nssdb"), dir.path());
        let asked = std::thread::spawn(move || bank.issue("jirodt", "Shomei#Demo1", &mut |_| {}));
        listener.set_nonblocking(false).unwrap();
        let (conn, _) = listener.accept().expect("the bank is asked");
        drop(conn);
        let e = asked.join().unwrap().unwrap_err();
        assert!(matches!(e, Fail::Network(_)), "{}", e.message());
    }
}
