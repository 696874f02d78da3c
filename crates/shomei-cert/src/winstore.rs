//! Windows: the user's certificate store `CurrentUser\My`, which Edge and
//! Chrome (and Firefox, set to read it) offer at 電子証明書方式 login.
//!
//! The key is made in this app (RSA 2048: CryptoAPI and wine handle it on
//! every Windows), handed to the Microsoft Enhanced RSA and AES provider
//! in a key container of its own (`shomei-` + 16 random bytes) *without*
//! `CRYPT_EXPORTABLE`, and the certificate is added to `My` with that
//! container named in its `CERT_KEY_PROV_INFO_PROP_ID`: Windows' 「エクスポート」
//! then offers the certificate only, never the key. (`PFXImportCertStore`
//! without `CRYPT_EXPORTABLE` gives the same policy, but chooses the
//! container itself; under wine every import lands in one default
//! container, so a renewal would overwrite the key of the certificate it
//! renews.) The PKCS#8 bytes are overwritten as soon as the provider holds
//! the key; nothing of it is written to disk by this app.
//!
//! Renewal authenticates with the certificate in the store: the TLS
//! signature is made by the provider (`CryptSignHashW`, RSA PKCS#1 v1.5 with
//! SHA-256, so TLS 1.2: CryptoAPI has no PSS).
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::ptr::{null, null_mut};
use std::sync::Arc;

use windows_sys::Win32::Foundation::GetLastError;
use windows_sys::Win32::Security::Cryptography::*;

use crate::fail::Fail;
use crate::keyblob::private_key_blob;
use crate::store::{CertStore, Signer, Stored};
use crate::text;

const ENCODING: u32 = X509_ASN_ENCODING | PKCS_7_ASN_ENCODING;

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain(std::iter::once(0)).collect()
}

fn from_wide(p: *const u16) -> String {
    if p.is_null() {
        return String::new();
    }
    // SAFETY: a NUL-terminated UTF-16 string owned by the caller's buffer.
    unsafe {
        let mut n = 0;
        while *p.add(n) != 0 {
            n += 1;
        }
        String::from_utf16_lossy(std::slice::from_raw_parts(p, n))
    }
}

fn last_error(call: &str) -> String {
    // SAFETY: reads the thread's last error.
    let e = unsafe { GetLastError() };
    format!("{call}: 0x{e:08x}")
}

/// The user's `My` store, closed when dropped.
struct My(HCERTSTORE);

impl My {
    fn open() -> Result<My, String> {
        let name = wide("My");
        // The registry's physical store of CurrentUser\My, where the
        // user's own certificates live (what browsers read is the system
        // store, a collection over it). Deleting through the collection
        // reports success but leaves the certificate in place under wine 8;
        // through the registry store it goes, on Windows and wine alike.
        // SAFETY: a system store by name; the handle is closed in Drop.
        let h = unsafe {
            CertOpenStore(
                CERT_STORE_PROV_SYSTEM_REGISTRY_W,
                0,
                0,
                CERT_SYSTEM_STORE_CURRENT_USER,
                name.as_ptr() as *const c_void,
            )
        };
        if h.is_null() {
            return Err(last_error("CertOpenStore(CurrentUser\\My)"));
        }
        Ok(My(h))
    }

    /// Every certificate in the store (duplicated contexts, freed by `Ctx`).
    fn all(&self) -> Vec<Ctx> {
        let mut out = Vec::new();
        let mut prev: *const CERT_CONTEXT = null();
        loop {
            // SAFETY: enumeration frees `prev` and returns the next or null.
            let c = unsafe { CertEnumCertificatesInStore(self.0, prev) };
            if c.is_null() {
                return out;
            }
            // SAFETY: keeps a reference of our own beyond the enumeration.
            out.push(Ctx(unsafe { CertDuplicateCertificateContext(c) }));
            prev = c;
        }
    }
}

impl Drop for My {
    fn drop(&mut self) {
        // SAFETY: the handle from CertOpenStore.
        unsafe { CertCloseStore(self.0, 0) };
    }
}

/// A certificate context we hold a reference to.
struct Ctx(*mut CERT_CONTEXT);

impl Drop for Ctx {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: a context we own a reference to.
            unsafe { CertFreeCertificateContext(self.0) };
        }
    }
}

impl Ctx {
    fn der(&self) -> Vec<u8> {
        // SAFETY: a valid context's encoded bytes.
        unsafe {
            std::slice::from_raw_parts((*self.0).pbCertEncoded, (*self.0).cbCertEncoded as usize)
                .to_vec()
        }
    }

    fn property(&self, id: u32) -> Option<Vec<u8>> {
        let mut n = 0u32;
        // SAFETY: size query, then a buffer of that size.
        unsafe {
            if CertGetCertificateContextProperty(self.0, id, null_mut(), &mut n) == 0 {
                return None;
            }
            let mut buf = vec![0u8; n as usize];
            if CertGetCertificateContextProperty(
                self.0,
                id,
                buf.as_mut_ptr() as *mut c_void,
                &mut n,
            ) == 0
            {
                return None;
            }
            buf.truncate(n as usize);
            Some(buf)
        }
    }

    fn friendly_name(&self) -> String {
        let Some(b) = self.property(CERT_FRIENDLY_NAME_PROP_ID) else {
            return String::new();
        };
        let w: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|c| *c != 0)
            .collect();
        String::from_utf16_lossy(&w)
    }

    /// The key's container, provider and type, when the certificate has one.
    fn key_place(&self) -> Option<KeyPlace> {
        let b = self.property(CERT_KEY_PROV_INFO_PROP_ID)?;
        // SAFETY: the property is a CRYPT_KEY_PROV_INFO with its strings in
        // the same buffer.
        unsafe {
            let info = &*(b.as_ptr() as *const CRYPT_KEY_PROV_INFO);
            Some(KeyPlace {
                container: from_wide(info.pwszContainerName),
                provider: from_wide(info.pwszProvName),
                prov_type: info.dwProvType,
                key_spec: info.dwKeySpec,
            })
        }
    }
}

/// Where a certificate's key lives.
#[derive(Clone, Debug)]
pub struct KeyPlace {
    pub container: String,
    pub provider: String,
    pub prov_type: u32,
    pub key_spec: u32,
}

/// A provider handle, released when dropped.
struct Prov(usize);

impl Prov {
    fn acquire(
        container: &str,
        provider: &str,
        prov_type: u32,
        flags: u32,
    ) -> Result<Prov, String> {
        let (c, p) = (wide(container), wide(provider));
        let mut h = 0usize;
        // SAFETY: out-pointer to a handle released in Drop.
        if unsafe {
            CryptAcquireContextW(
                &mut h,
                c.as_ptr(),
                p.as_ptr(),
                prov_type,
                flags | CRYPT_SILENT,
            )
        } == 0
        {
            return Err(last_error(&format!("CryptAcquireContextW({container})")));
        }
        Ok(Prov(h))
    }
}

impl Drop for Prov {
    fn drop(&mut self) {
        // SAFETY: a handle from CryptAcquireContextW.
        unsafe { CryptReleaseContext(self.0, 0) };
    }
}

const PROVIDER: &str = "Microsoft Enhanced RSA and AES Cryptographic Provider";

/// `CurrentUser\My`, as the app sees it.
pub struct WinStore {
    /// The bank, as the friendly name names it.
    pub bank: String,
}

impl WinStore {
    fn unwritable(&self, reason: &str) -> Fail {
        Fail::Local(text::store_not_writable(&self.place(), reason))
    }

    fn matches(friendly: &str, nickname: &str) -> bool {
        friendly == nickname || friendly.starts_with(&format!("{nickname}（"))
    }
}

impl CertStore for WinStore {
    fn place(&self) -> String {
        "Windows の証明書ストア（現在のユーザー\\個人）".into()
    }

    fn prepare(&self) -> Result<(), Fail> {
        My::open().map(drop).map_err(|e| self.unwritable(&e))
    }

    fn list(&self) -> Result<Vec<Stored>, Fail> {
        let my = My::open().map_err(|e| self.unwritable(&e))?;
        Ok(my
            .all()
            .into_iter()
            .filter(|c| c.key_place().is_some())
            .map(|c| Stored {
                nickname: c.friendly_name(),
                der: c.der(),
            })
            .collect())
    }

    fn add(
        &self,
        key_pkcs8: &[u8],
        cert: &[u8],
        _chain: &[Vec<u8>],
        nickname: &str,
        _root_pem: &[u8],
    ) -> Result<(), Fail> {
        let mut blob =
            private_key_blob(key_pkcs8).map_err(|e| Fail::Local(text::local_problem(&e)))?;
        let container = format!("shomei-{}", crate::store::random_hex(16)?);
        let imported = (|| {
            let prov = Prov::acquire(&container, PROVIDER, PROV_RSA_AES, CRYPT_NEWKEYSET)?;
            let mut key = 0usize;
            // SAFETY: the blob is a complete PRIVATEKEYBLOB; flags 0: not exportable.
            if unsafe { CryptImportKey(prov.0, blob.as_ptr(), blob.len() as u32, 0, 0, &mut key) }
                == 0
            {
                return Err(last_error("CryptImportKey"));
            }
            // SAFETY: the key handle just made.
            unsafe { CryptDestroyKey(key) };
            Ok(())
        })();
        blob.iter_mut().for_each(|b| *b = 0);
        imported.map_err(|e| {
            forget_key(&container, PROVIDER, PROV_RSA_AES);
            self.unwritable(&e)
        })?;
        let added = (|| {
            let my = My::open()?;
            // SAFETY: a context made from the DER, freed by Ctx.
            let ctx = Ctx(unsafe {
                CertCreateCertificateContext(ENCODING, cert.as_ptr(), cert.len() as u32)
            });
            if ctx.0.is_null() {
                return Err(last_error("CertCreateCertificateContext"));
            }
            let mut c = wide(&container);
            let mut p = wide(PROVIDER);
            let info = CRYPT_KEY_PROV_INFO {
                pwszContainerName: c.as_mut_ptr(),
                pwszProvName: p.as_mut_ptr(),
                dwProvType: PROV_RSA_AES,
                dwFlags: 0,
                cProvParam: 0,
                rgProvParam: null_mut(),
                dwKeySpec: AT_KEYEXCHANGE,
            };
            let friendly = wide(&format!("{nickname}（{}）", self.bank));
            let name = CRYPT_INTEGER_BLOB {
                cbData: (friendly.len() * 2) as u32,
                pbData: friendly.as_ptr() as *mut u8,
            };
            // SAFETY: the properties are copied into the context.
            unsafe {
                if CertSetCertificateContextProperty(
                    ctx.0,
                    CERT_KEY_PROV_INFO_PROP_ID,
                    0,
                    &info as *const _ as *const c_void,
                ) == 0
                {
                    return Err(last_error(
                        "CertSetCertificateContextProperty(KEY_PROV_INFO)",
                    ));
                }
                if CertSetCertificateContextProperty(
                    ctx.0,
                    CERT_FRIENDLY_NAME_PROP_ID,
                    0,
                    &name as *const _ as *const c_void,
                ) == 0
                {
                    return Err(last_error(
                        "CertSetCertificateContextProperty(FRIENDLY_NAME)",
                    ));
                }
                if CertAddCertificateContextToStore(
                    my.0,
                    ctx.0,
                    CERT_STORE_ADD_REPLACE_EXISTING,
                    null_mut(),
                ) == 0
                {
                    return Err(last_error("CertAddCertificateContextToStore"));
                }
            }
            Ok(())
        })();
        added.map_err(|e| {
            forget_key(&container, PROVIDER, PROV_RSA_AES);
            self.unwritable(&e)
        })
    }

    fn signs(&self) -> bool {
        true
    }

    fn signer(&self, cert: &[u8]) -> Option<Result<Signer, Fail>> {
        let found = (|| {
            let my = My::open().map_err(|e| self.unwritable(&e))?;
            let place = my
                .all()
                .into_iter()
                .find(|c| c.der() == cert)
                .and_then(|c| c.key_place())
                .ok_or(Fail::Usage(text::NOT_KEPT.into()))?;
            Ok(Arc::new(StoreKey(place)) as Signer)
        })();
        Some(found)
    }

    fn remove(&self, nickname: &str) -> Result<(), Fail> {
        let my = My::open().map_err(|e| self.unwritable(&e))?;
        for c in my.all() {
            if !Self::matches(&c.friendly_name(), nickname) {
                continue;
            }
            let Some(place) = c.key_place() else {
                continue;
            };
            // SAFETY: deleting frees one reference, which is ours: give it
            // away so Drop does not free it again.
            let ctx = std::mem::ManuallyDrop::new(c);
            if unsafe { CertDeleteCertificateFromStore(ctx.0) } == 0 {
                return Err(self.unwritable(&last_error("CertDeleteCertificateFromStore")));
            }
            forget_key(&place.container, &place.provider, place.prov_type);
        }
        Ok(())
    }
}

/// Deletes a key container (the key goes with its certificate).
fn forget_key(container: &str, provider: &str, prov_type: u32) {
    let (c, p) = (wide(container), wide(provider));
    let mut h = 0usize;
    // SAFETY: CRYPT_DELETEKEYSET returns no handle.
    unsafe {
        CryptAcquireContextW(
            &mut h,
            c.as_ptr(),
            p.as_ptr(),
            prov_type,
            CRYPT_DELETEKEYSET | CRYPT_SILENT,
        )
    };
}

/// The store's key of a certificate, as rustls signs with it.
#[derive(Debug)]
struct StoreKey(KeyPlace);

impl rustls::sign::SigningKey for StoreKey {
    fn choose_scheme(
        &self,
        offered: &[rustls::SignatureScheme],
    ) -> Option<Box<dyn rustls::sign::Signer>> {
        use rustls::SignatureScheme as S;
        [
            (S::RSA_PKCS1_SHA256, CALG_SHA_256),
            (S::RSA_PKCS1_SHA384, CALG_SHA_384),
            (S::RSA_PKCS1_SHA512, CALG_SHA_512),
        ]
        .into_iter()
        .find(|(s, _)| offered.contains(s))
        .map(|(scheme, alg)| {
            Box::new(StoreSigner {
                place: self.0.clone(),
                scheme,
                alg,
            }) as Box<dyn rustls::sign::Signer>
        })
    }

    fn algorithm(&self) -> rustls::SignatureAlgorithm {
        rustls::SignatureAlgorithm::RSA
    }
}

#[derive(Debug)]
struct StoreSigner {
    place: KeyPlace,
    scheme: rustls::SignatureScheme,
    alg: ALG_ID,
}

/// Signs `message` with the key in the store (PKCS#1 v1.5).
pub fn sign_in_store(place: &KeyPlace, alg: ALG_ID, message: &[u8]) -> Result<Vec<u8>, String> {
    use aws_lc_rs::digest;
    let d = match alg {
        CALG_SHA_384 => digest::digest(&digest::SHA384, message),
        CALG_SHA_512 => digest::digest(&digest::SHA512, message),
        _ => digest::digest(&digest::SHA256, message),
    };
    // The AES provider has the SHA-2 hashes; open the key's container with it.
    let prov = Prov::acquire(&place.container, PROVIDER, PROV_RSA_AES, 0)?;
    let mut hash = 0usize;
    // SAFETY: a hash object of the provider, destroyed below; the digest is
    // set, not computed, and the signature buffer is sized by the first call.
    unsafe {
        if CryptCreateHash(prov.0, alg, 0, 0, &mut hash) == 0 {
            return Err(last_error("CryptCreateHash"));
        }
        let res = (|| {
            if CryptSetHashParam(hash, HP_HASHVAL, d.as_ref().as_ptr(), 0) == 0 {
                return Err(last_error("CryptSetHashParam"));
            }
            let mut n = 0u32;
            if CryptSignHashW(hash, place.key_spec, null(), 0, null_mut(), &mut n) == 0 {
                return Err(last_error("CryptSignHashW"));
            }
            let mut sig = vec![0u8; n as usize];
            if CryptSignHashW(hash, place.key_spec, null(), 0, sig.as_mut_ptr(), &mut n) == 0 {
                return Err(last_error("CryptSignHashW"));
            }
            sig.truncate(n as usize);
            // CryptoAPI writes the signature little-endian.
            sig.reverse();
            Ok(sig)
        })();
        CryptDestroyHash(hash);
        res
    }
}

impl rustls::sign::Signer for StoreSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        sign_in_store(&self.place, self.alg, message).map_err(rustls::Error::General)
    }

    fn scheme(&self) -> rustls::SignatureScheme {
        self.scheme
    }
}
