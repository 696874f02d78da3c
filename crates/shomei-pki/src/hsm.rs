//! The issuing CA's key in a PKCS#11 token (an HSM; SoftHSM in the tests).
//! The key is generated inside the token as sensitive and non-extractable,
//! so it never exists outside it: certificates, CRLs and the OCSP signer's
//! certificate are signed by the token (ECDSA P-256, the digest computed
//! here, `CKM_ECDSA` there).

use std::path::PathBuf;
use std::sync::Mutex;

use aws_lc_rs::digest::{SHA256, digest};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::types::AuthPin;
use rcgen::{PublicKeyData, SignatureAlgorithm, SigningKey};

use crate::der::{integer, tlv};

/// Where the issuing CA's key lives in a PKCS#11 token.
#[derive(Clone)]
pub struct Pkcs11Config {
    /// The PKCS#11 module (shared library) of the HSM.
    pub module: PathBuf,
    /// The token's label.
    pub token_label: String,
    /// The key's label (CKA_LABEL) inside the token.
    pub key_label: String,
    /// The user PIN.
    pub pin: String,
}

impl std::fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("key_label", &self.key_label)
            .field("pin", &"(hidden)")
            .finish()
    }
}

/// DER of the P-256 curve's OID, as CKA_EC_PARAMS wants it.
const P256_PARAMS: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// A P-256 private key in a token, with its public point.
pub struct HsmKey {
    /// One session, used by one signature at a time, and the key's handle
    /// in it (handles are per session: a new session finds the key again).
    session: Mutex<(Session, ObjectHandle)>,
    /// The uncompressed public point (0x04 ‖ X ‖ Y).
    public: Vec<u8>,
    /// To log in again when the token drops the session.
    cfg: Pkcs11Config,
}

impl std::fmt::Debug for HsmKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HsmKey").finish_non_exhaustive()
    }
}

fn err(what: &str, e: impl std::fmt::Display) -> String {
    format!("PKCS#11: {what}: {e}")
}

/// Logs in to the configured token (the module is initialised once per
/// process; a second initialisation is harmless).
fn session(cfg: &Pkcs11Config) -> Result<Session, String> {
    let ctx = Pkcs11::new(&cfg.module)
        .map_err(|e| err(&format!("cannot load module {}", cfg.module.display()), e))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(err("C_Initialize", e)),
    }
    let mut slot = None;
    for s in ctx
        .get_slots_with_initialized_token()
        .map_err(|e| err("listing slots", e))?
    {
        let info = ctx
            .get_token_info(s)
            .map_err(|e| err("reading token info", e))?;
        if info.label().trim_end() == cfg.token_label {
            slot = Some(s);
            break;
        }
    }
    let slot = slot.ok_or_else(|| format!("PKCS#11: no token labelled {:?}", cfg.token_label))?;
    let session = ctx
        .open_rw_session(slot)
        .map_err(|e| err("opening a session", e))?;
    match session.login(UserType::User, Some(&AuthPin::from(cfg.pin.clone()))) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => return Err(err("login (check the PIN)", e)),
    }
    Ok(session)
}

/// CKA_EC_POINT is a DER OCTET STRING around the point; some modules give
/// the bare point.
fn bare_point(ec_point: &[u8]) -> Vec<u8> {
    if ec_point.len() == 67 && ec_point[0] == 0x04 && ec_point[1] == 65 {
        ec_point[2..].to_vec()
    } else {
        ec_point.to_vec()
    }
}

/// Logs in and finds the key pair labelled `key_label`: the session, the
/// private key's handle and the public point.
fn find_key(cfg: &Pkcs11Config) -> Result<(Session, ObjectHandle, Vec<u8>), String> {
    let session = session(cfg)?;
    let label = Attribute::Label(cfg.key_label.as_bytes().to_vec());
    let private = session
        .find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY), label.clone()])
        .map_err(|e| err("finding the key", e))?;
    let public = session
        .find_objects(&[Attribute::Class(ObjectClass::PUBLIC_KEY), label])
        .map_err(|e| err("finding the public key", e))?;
    let (Some(key), Some(public)) = (private.first(), public.first()) else {
        return Err(format!(
            "PKCS#11: no key pair labelled {:?} in token {:?}",
            cfg.key_label, cfg.token_label
        ));
    };
    if private.len() > 1 {
        return Err(format!(
            "PKCS#11: {} private keys are labelled {:?}; the label must be unique",
            private.len(),
            cfg.key_label
        ));
    }
    let point = session
        .get_attributes(*public, &[AttributeType::EcPoint])
        .map_err(|e| err("reading the public key", e))?;
    let Some(Attribute::EcPoint(point)) = point.into_iter().next() else {
        return Err("PKCS#11: the public key has no EC point (not an EC key?)".into());
    };
    Ok((session, *key, bare_point(&point)))
}

impl HsmKey {
    /// The key labelled `key_label`, which must exist.
    pub fn open(cfg: &Pkcs11Config) -> Result<Self, String> {
        let (session, key, public) = find_key(cfg)?;
        Ok(Self {
            session: Mutex::new((session, key)),
            public,
            cfg: cfg.clone(),
        })
    }

    /// Generates a P-256 key pair labelled `key_label` in the token:
    /// private key sensitive, never extractable, for signing only. Refuses
    /// if a key of that label exists already (it would be ambiguous).
    pub fn generate(cfg: &Pkcs11Config) -> Result<Self, String> {
        let session = session(cfg)?;
        let label = cfg.key_label.as_bytes().to_vec();
        let existing = session
            .find_objects(&[Attribute::Label(label.clone())])
            .map_err(|e| err("looking for the label", e))?;
        if !existing.is_empty() {
            return Err(format!(
                "PKCS#11: token {:?} already holds objects labelled {:?}; choose another key label",
                cfg.token_label, cfg.key_label
            ));
        }
        let id = label.clone();
        // Every usage said, not left to the token's defaults: SoftHSM's
        // make an EC private key decrypt and unwrap too, and its public key
        // encrypt and wrap.
        let public_template = [
            Attribute::Token(true),
            Attribute::Private(false),
            Attribute::KeyType(KeyType::EC),
            Attribute::EcParams(P256_PARAMS.to_vec()),
            Attribute::Verify(true),
            Attribute::VerifyRecover(false),
            Attribute::Encrypt(false),
            Attribute::Wrap(false),
            Attribute::Derive(false),
            Attribute::Label(label.clone()),
            Attribute::Id(id.clone()),
        ];
        let private_template = [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::SignRecover(false),
            Attribute::Decrypt(false),
            Attribute::Unwrap(false),
            Attribute::Derive(false),
            Attribute::Label(label),
            Attribute::Id(id),
        ];
        session
            .generate_key_pair(
                &Mechanism::EccKeyPairGen,
                &public_template,
                &private_template,
            )
            .map_err(|e| err("generating the key pair", e))?;
        drop(session);
        Self::open(cfg)
    }

    /// "key K in token T", for logs and the start-up message.
    pub fn describe(&self) -> String {
        format!(
            "key {:?} in PKCS#11 token {:?}",
            self.cfg.key_label, self.cfg.token_label
        )
    }

    /// Is the private key marked sensitive and never extractable?
    pub fn is_locked_in(&self) -> Result<bool, String> {
        let guard = self
            .session
            .lock()
            .map_err(|_| "PKCS#11 session lock poisoned".to_string())?;
        let (session, key) = &*guard;
        let attrs = session
            .get_attributes(
                *key,
                &[AttributeType::Sensitive, AttributeType::NeverExtractable],
            )
            .map_err(|e| err("reading key attributes", e))?;
        Ok(attrs.iter().all(|a| {
            matches!(
                a,
                Attribute::Sensitive(true) | Attribute::NeverExtractable(true)
            )
        }) && attrs.len() == 2)
    }

    /// ECDSA P-256 with SHA-256 over `msg`: the DER Ecdsa-Sig-Value.
    pub fn sign_der(&self, msg: &[u8]) -> Result<Vec<u8>, String> {
        let hash = digest(&SHA256, msg);
        let raw = {
            let mut guard = self
                .session
                .lock()
                .map_err(|_| "PKCS#11 session lock poisoned".to_string())?;
            let first = guard.0.sign(&Mechanism::Ecdsa, guard.1, hash.as_ref());
            match first {
                Ok(raw) => raw,
                Err(e) => {
                    // The token may have dropped the session (an HSM
                    // restarted, a network HSM reconnected): log in again,
                    // find the same key, and try once more.
                    tracing::warn!(error = %e, "PKCS#11 signing failed; opening a new session");
                    let (session, key, public) = find_key(&self.cfg)?;
                    if public != self.public {
                        return Err(format!(
                            "PKCS#11: the key labelled {:?} is no longer the issuing CA's key",
                            self.cfg.key_label
                        ));
                    }
                    *guard = (session, key);
                    guard
                        .0
                        .sign(&Mechanism::Ecdsa, guard.1, hash.as_ref())
                        .map_err(|e| err("signing", e))?
                }
            }
        };
        if raw.len() != 64 {
            return Err(format!(
                "PKCS#11: unexpected ECDSA signature length {}",
                raw.len()
            ));
        }
        let mut seq = integer(&raw[..32]);
        seq.extend(integer(&raw[32..]));
        Ok(tlv(0x30, &seq))
    }
}

impl PublicKeyData for HsmKey {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl SigningKey for HsmKey {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.sign_der(msg).map_err(|e| {
            // rcgen's error cannot carry the message: log it here.
            tracing::error!(error = %e, "the HSM refused to sign");
            rcgen::Error::RemoteKeyError
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ec_point_octet_string_is_unwrapped() {
        let mut wrapped = vec![0x04, 65, 0x04];
        wrapped.extend([7u8; 64]);
        assert_eq!(bare_point(&wrapped), wrapped[2..]);
        assert_eq!(bare_point(&wrapped[2..]), wrapped[2..]);
    }
}
