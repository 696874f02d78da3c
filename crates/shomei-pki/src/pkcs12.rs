//! PKCS#12 (RFC 7292) written and read by hand with aws-lc-rs: the private
//! key in a pkcs8ShroudedKeyBag encrypted with PBES2 (PBKDF2-HMAC-SHA256,
//! AES-256-CBC), the certificate and the CA chain in certificate bags, and an
//! HMAC-SHA256 integrity MAC keyed by the PKCS#12 KDF — what OpenSSL 3 writes
//! by default, readable by OpenSSL, NSS (pk12util) and current browsers.
//!
//! `write_legacy` writes the older form that Windows before 10 (1709) and
//! Windows Server 2016 need: the key under pbeWithSHAAnd3-KeyTripleDES-CBC
//! and an HMAC-SHA1 MAC, both keyed by the PKCS#12 KDF with SHA-1. `read`
//! takes both.
//!
//! Written here, not with a kept crate: `p12-keystore` 0.4, the one that
//! writes both forms, names the certificate's bag by the certificate's
//! subject and drops the name it is given, and NSS (pk12util, Chromium,
//! Firefox) files an imported certificate under that bag's name, while
//! shomei-cert finds, renews and removes its certificates by its own name
//! (`Shomei <login ID> <serial>`); it also rests on pre-release crates
//! (`cms` 0.3.0-pre, `pkcs12` 0.2.0-pre) and a second cryptographic stack.

use crate::der::{self, tlv};
use aws_lc_rs::cipher::{
    AES_256, DecryptionContext, PaddedBlockDecryptingKey, PaddedBlockEncryptingKey,
    UnboundCipherKey,
};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::{digest, hmac, pbkdf2};

/// PBKDF2 iterations for the key (OWASP's 2023 figure for HMAC-SHA256).
pub const KEY_ITERATIONS: u32 = 600_000;
/// PKCS#12 KDF iterations for the MAC.
const MAC_ITERATIONS: u32 = 10_000;

const OID_DATA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
const OID_KEY_BAG: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x02,
];
const OID_CERT_BAG: &[u8] = &[
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x0a, 0x01, 0x03,
];
const OID_X509_CERT: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x16, 0x01];
const OID_LOCAL_KEY_ID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x15];
const OID_FRIENDLY_NAME: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x14];
const OID_PBES2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0d];
const OID_PBKDF2: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x05, 0x0c];
const OID_HMAC_SHA256: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x02, 0x09];
const OID_AES256_CBC: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x01, 0x2a];
const OID_SHA256: &[u8] = &[0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
/// pbeWithSHAAnd3-KeyTripleDES-CBC (RFC 7292 Appendix C).
const OID_PBE_SHA1_3DES: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x0c, 0x01, 0x03];
/// Iterations of the legacy form's KDF (what OpenSSL's -legacy writes).
const LEGACY_ITERATIONS: u32 = 2048;

/// Why a PKCS#12 file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum P12Error {
    #[error("the PKCS#12 password is wrong, or the file is damaged")]
    /// The MAC does not check: a wrong password (or a changed file).
    WrongPassword,
    #[error(
        "the file is not a PKCS#12 file written by shomei-cert (PBES2/AES-256, HMAC-SHA256): {0}"
    )]
    /// A form our reader does not take (named in the message).
    Unsupported(&'static str),
    #[error("cryptographic failure: {0}")]
    /// The cryptographic library failed.
    Crypto(String),
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

fn int(v: u32) -> Vec<u8> {
    der::integer(&v.to_be_bytes())
}

fn oid(o: &[u8]) -> Vec<u8> {
    tlv(0x06, o)
}

fn random<const N: usize>(rng: &SystemRandom) -> Result<[u8; N], P12Error> {
    let mut b = [0u8; N];
    rng.fill(&mut b)
        .map_err(|_| P12Error::Crypto("random generator failed".into()))?;
    Ok(b)
}

/// The password as PKCS#12 wants it for the MAC: BMPString with a NUL.
fn bmp(password: &str) -> Vec<u8> {
    let mut out: Vec<u8> = password
        .encode_utf16()
        .flat_map(|u| u.to_be_bytes())
        .collect();
    out.extend_from_slice(&[0, 0]);
    out
}

/// RFC 7292 Appendix B.2 with `hash` (SHA-256, or SHA-1 for the legacy
/// form; both have v = 64).
fn pkcs12_kdf_with(
    hash: &'static digest::Algorithm,
    password: &str,
    salt: &[u8],
    id: u8,
    iterations: u32,
    out_len: usize,
) -> Vec<u8> {
    const V: usize = 64;
    let fill = |src: &[u8]| -> Vec<u8> {
        if src.is_empty() {
            return Vec::new();
        }
        let n = V * src.len().div_ceil(V);
        src.iter().copied().cycle().take(n).collect()
    };
    let d = vec![id; V];
    let mut i: Vec<u8> = [fill(salt), fill(&bmp(password))].concat();
    let mut out = Vec::with_capacity(out_len);
    while out.len() < out_len {
        let mut a = digest::digest(hash, &[d.as_slice(), i.as_slice()].concat())
            .as_ref()
            .to_vec();
        for _ in 1..iterations {
            a = digest::digest(hash, &a).as_ref().to_vec();
        }
        out.extend_from_slice(&a);
        let b: Vec<u8> = a.iter().copied().cycle().take(V).collect();
        for block in i.chunks_mut(V) {
            // block = (block + b + 1) mod 2^(8V)
            let mut carry = 1u16;
            for k in (0..V).rev() {
                let sum = block[k] as u16 + b[k] as u16 + carry;
                block[k] = sum as u8;
                carry = sum >> 8;
            }
        }
    }
    out.truncate(out_len);
    out
}

fn attributes(local_key_id: Option<&[u8]>, friendly_name: Option<&str>) -> Vec<u8> {
    let mut attrs = Vec::new();
    if let Some(name) = friendly_name {
        let bmp_name: Vec<u8> = name.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
        attrs.extend(seq(&[
            &oid(OID_FRIENDLY_NAME),
            &tlv(0x31, &tlv(0x1e, &bmp_name)),
        ]));
    }
    if let Some(id) = local_key_id {
        attrs.extend(seq(&[&oid(OID_LOCAL_KEY_ID), &tlv(0x31, &tlv(0x04, id))]));
    }
    if attrs.is_empty() {
        Vec::new()
    } else {
        tlv(0x31, &attrs)
    }
}

fn cert_bag(cert: &[u8], local_key_id: Option<&[u8]>, name: Option<&str>) -> Vec<u8> {
    let value = seq(&[&oid(OID_X509_CERT), &tlv(0xa0, &tlv(0x04, cert))]);
    seq(&[
        &oid(OID_CERT_BAG),
        &tlv(0xa0, &value),
        &attributes(local_key_id, name),
    ])
}

fn data_content_info(content: &[u8]) -> Vec<u8> {
    seq(&[&oid(OID_DATA), &tlv(0xa0, &tlv(0x04, content))])
}

/// A PKCS#12 file with `key_pkcs8`, its certificate `cert` and the `chain`.
pub fn write(
    key_pkcs8: &[u8],
    cert: &[u8],
    chain: &[Vec<u8>],
    friendly_name: &str,
    password: &str,
) -> Result<Vec<u8>, P12Error> {
    write_with(
        key_pkcs8,
        cert,
        chain,
        friendly_name,
        password,
        KEY_ITERATIONS,
    )
}

/// `write` with another PBKDF2 iteration count (tests use fewer).
pub fn write_with(
    key_pkcs8: &[u8],
    cert: &[u8],
    chain: &[Vec<u8>],
    friendly_name: &str,
    password: &str,
    iterations: u32,
) -> Result<Vec<u8>, P12Error> {
    let rng = SystemRandom::new();
    let crypto = |e: aws_lc_rs::error::Unspecified| P12Error::Crypto(e.to_string());
    // The key: PBES2 = PBKDF2-HMAC-SHA256 + AES-256-CBC.
    let salt: [u8; 16] = random(&rng)?;
    let iterations_nz =
        std::num::NonZeroU32::new(iterations).ok_or(P12Error::Crypto("zero iterations".into()))?;
    let mut kek = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations_nz,
        &salt,
        password.as_bytes(),
        &mut kek,
    );
    let key =
        PaddedBlockEncryptingKey::cbc_pkcs7(UnboundCipherKey::new(&AES_256, &kek).map_err(crypto)?)
            .map_err(crypto)?;
    let mut encrypted = key_pkcs8.to_vec();
    let ctx = key.encrypt(&mut encrypted).map_err(crypto)?;
    let iv: &[u8] = match &ctx {
        DecryptionContext::Iv128(iv) => iv.as_ref(),
        _ => return Err(P12Error::Crypto("unexpected cipher context".into())),
    };
    let prf = seq(&[&oid(OID_HMAC_SHA256), &[0x05, 0x00]]);
    let kdf = seq(&[
        &oid(OID_PBKDF2),
        &seq(&[&tlv(0x04, &salt), &int(iterations), &prf]),
    ]);
    let enc = seq(&[&oid(OID_AES256_CBC), &tlv(0x04, iv)]);
    let alg = seq(&[&oid(OID_PBES2), &seq(&[&kdf, &enc])]);
    let epki = seq(&[&alg, &tlv(0x04, &encrypted)]);
    assemble(
        &epki,
        cert,
        chain,
        friendly_name,
        password,
        Mac::Sha256,
        &rng,
    )
}

/// The legacy form (see the module's documentation): the same bags, the
/// key under PBE-SHA1-3DES, an HMAC-SHA1 MAC.
pub fn write_legacy(
    key_pkcs8: &[u8],
    cert: &[u8],
    chain: &[Vec<u8>],
    friendly_name: &str,
    password: &str,
) -> Result<Vec<u8>, P12Error> {
    let rng = SystemRandom::new();
    let salt: [u8; 8] = random(&rng)?;
    let sha1 = &digest::SHA1_FOR_LEGACY_USE_ONLY;
    let key = pkcs12_kdf_with(sha1, password, &salt, 1, LEGACY_ITERATIONS, 24);
    let iv = pkcs12_kdf_with(sha1, password, &salt, 2, LEGACY_ITERATIONS, 8);
    let encrypted = tdes_cbc_encrypt(&key, &iv, key_pkcs8)?;
    let alg = seq(&[
        &oid(OID_PBE_SHA1_3DES),
        &seq(&[&tlv(0x04, &salt), &int(LEGACY_ITERATIONS)]),
    ]);
    let epki = seq(&[&alg, &tlv(0x04, &encrypted)]);
    assemble(&epki, cert, chain, friendly_name, password, Mac::Sha1, &rng)
}

/// The integrity MAC of a PKCS#12 file.
#[derive(Clone, Copy)]
enum Mac {
    Sha256,
    Sha1,
}

/// The PFX around an encrypted key (`epki`): the certificate bags, the key
/// bag, and the MAC over them.
fn assemble(
    epki: &[u8],
    cert: &[u8],
    chain: &[Vec<u8>],
    friendly_name: &str,
    password: &str,
    mac: Mac,
    rng: &SystemRandom,
) -> Result<Vec<u8>, P12Error> {
    let local_key_id = digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, cert)
        .as_ref()
        .to_vec();
    let key_bag = seq(&[
        &oid(OID_KEY_BAG),
        &tlv(0xa0, epki),
        &attributes(Some(&local_key_id), Some(friendly_name)),
    ]);

    let mut cert_bags = cert_bag(cert, Some(&local_key_id), Some(friendly_name));
    for ca in chain {
        cert_bags.extend(cert_bag(ca, None, None));
    }
    let auth_safe = seq(&[
        &data_content_info(&tlv(0x30, &cert_bags)),
        &data_content_info(&tlv(0x30, &key_bag)),
    ]);

    // Integrity: an HMAC over the AuthenticatedSafe, keyed by the KDF.
    let mac_salt: [u8; 16] = random(rng)?;
    let (hash, hmac_alg, hash_oid, len, iterations) = match mac {
        Mac::Sha256 => (
            &digest::SHA256,
            hmac::HMAC_SHA256,
            OID_SHA256,
            32,
            MAC_ITERATIONS,
        ),
        Mac::Sha1 => (
            &digest::SHA1_FOR_LEGACY_USE_ONLY,
            hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            OID_SHA1,
            20,
            LEGACY_ITERATIONS,
        ),
    };
    let mac_key = pkcs12_kdf_with(hash, password, &mac_salt, 3, iterations, len);
    let tag = hmac::sign(&hmac::Key::new(hmac_alg, &mac_key), &auth_safe);
    let digest_info = seq(&[
        &seq(&[&oid(hash_oid), &[0x05, 0x00]]),
        &tlv(0x04, tag.as_ref()),
    ]);
    let mac_data = seq(&[&digest_info, &tlv(0x04, &mac_salt), &int(iterations)]);
    Ok(seq(&[&int(3), &data_content_info(&auth_safe), &mac_data]))
}

/// What `read` finds in a PKCS#12 file.
pub struct Contents {
    /// The private key, PKCS#8 DER, decrypted.
    pub key_pkcs8: Vec<u8>,
    /// The certificate the key belongs to, then the others.
    pub cert: Vec<u8>,
    /// The other certificates of the file: the CAs of the chain.
    pub chain: Vec<Vec<u8>>,
    /// The key was in the legacy form (PBE-SHA1-3DES).
    pub legacy: bool,
}

/// The content of the element at the front of `input` and what follows it;
/// the element must have `tag`.
fn want(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), P12Error> {
    let e = der::read(input).ok_or(P12Error::Unsupported("truncated or malformed DER"))?;
    if e.tag != tag {
        return Err(P12Error::Unsupported("unexpected structure"));
    }
    Ok((e.content, e.rest))
}

fn uint(content: &[u8]) -> u32 {
    content
        .iter()
        .fold(0u32, |a, b| a.saturating_mul(256).saturating_add(*b as u32))
}

/// Reads a PKCS#12 file written by `write` (or OpenSSL 3's default). The MAC
/// is checked first, so a wrong password is told as such.
pub fn read(der: &[u8], password: &str) -> Result<Contents, P12Error> {
    let (pfx, _) = want(der, 0x30)?;
    let (_, rest) = want(pfx, 0x02)?;
    let (ci, rest) = want(rest, 0x30)?;
    let (_, ci_rest) = want(ci, 0x06)?;
    let (explicit, _) = want(ci_rest, 0xa0)?;
    let (auth_safe, _) = want(explicit, 0x04)?;
    let (mac_data, _) = want(rest, 0x30)?;
    let (digest_info, rest) = want(mac_data, 0x30)?;
    let (alg, rest2) = want(digest_info, 0x30)?;
    let (alg_oid, _) = want(alg, 0x06)?;
    let (hash, hmac_alg, len) = if alg_oid == OID_SHA256 {
        (&digest::SHA256, hmac::HMAC_SHA256, 32)
    } else if alg_oid == OID_SHA1 {
        (
            &digest::SHA1_FOR_LEGACY_USE_ONLY,
            hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            20,
        )
    } else {
        return Err(P12Error::Unsupported(
            "MAC is neither HMAC-SHA256 nor HMAC-SHA1",
        ));
    };
    let (mac, _) = want(rest2, 0x04)?;
    let (mac_salt, rest) = want(rest, 0x04)?;
    let iterations = der::expect(rest, 0x02).map_or(1, |e| uint(e.content));
    if iterations == 0 || iterations > 10_000_000 {
        return Err(P12Error::Unsupported("unreasonable MAC iteration count"));
    }
    let mac_key = pkcs12_kdf_with(hash, password, mac_salt, 3, iterations, len);
    hmac::verify(&hmac::Key::new(hmac_alg, &mac_key), auth_safe, mac)
        .map_err(|_| P12Error::WrongPassword)?;

    let mut key = None;
    let mut legacy = false;
    let mut certs: Vec<(Vec<u8>, bool)> = Vec::new();
    let (mut infos, _) = want(auth_safe, 0x30)?;
    while !infos.is_empty() {
        let (ci, rest) = want(infos, 0x30)?;
        infos = rest;
        let (ci_oid, ci_rest) = want(ci, 0x06)?;
        if ci_oid != OID_DATA {
            return Err(P12Error::Unsupported(
                "encrypted certificate bags (use a file written by shomei-cert)",
            ));
        }
        let (explicit, _) = want(ci_rest, 0xa0)?;
        let (safe_contents, _) = want(explicit, 0x04)?;
        let (mut bags, _) = want(safe_contents, 0x30)?;
        while !bags.is_empty() {
            let (bag, rest) = want(bags, 0x30)?;
            bags = rest;
            let (bag_oid, bag_rest) = want(bag, 0x06)?;
            let (value, attrs) = want(bag_rest, 0xa0)?;
            if bag_oid == OID_CERT_BAG {
                let (cb, _) = want(value, 0x30)?;
                let (_, cb_rest) = want(cb, 0x06)?;
                let (explicit, _) = want(cb_rest, 0xa0)?;
                let (cert, _) = want(explicit, 0x04)?;
                let has_key_id = !attrs.is_empty()
                    && attrs
                        .windows(OID_LOCAL_KEY_ID.len())
                        .any(|w| w == OID_LOCAL_KEY_ID);
                certs.push((cert.to_vec(), has_key_id));
            } else if bag_oid == OID_KEY_BAG {
                legacy = value
                    .windows(OID_PBE_SHA1_3DES.len())
                    .any(|w| w == OID_PBE_SHA1_3DES);
                key = Some(decrypt_key(value, password)?);
            }
        }
    }
    let key_pkcs8 = key.ok_or(P12Error::Unsupported("no private key"))?;
    let pos = certs.iter().position(|(_, k)| *k).unwrap_or(0);
    if certs.is_empty() {
        return Err(P12Error::Unsupported("no certificate"));
    }
    let cert = certs.remove(pos).0;
    Ok(Contents {
        key_pkcs8,
        cert,
        chain: certs.into_iter().map(|c| c.0).collect(),
        legacy,
    })
}

fn decrypt_key(epki: &[u8], password: &str) -> Result<Vec<u8>, P12Error> {
    let unsupported = P12Error::Unsupported(
        "the key is not encrypted with PBES2 (PBKDF2-HMAC-SHA256, AES-256-CBC)",
    );
    let (epki, _) = want(epki, 0x30)?;
    let (alg, rest) = want(epki, 0x30)?;
    let (encrypted, _) = want(rest, 0x04)?;
    let (alg_oid, params) = want(alg, 0x06)?;
    if alg_oid == OID_PBE_SHA1_3DES {
        return decrypt_legacy_key(params, encrypted, password);
    }
    if alg_oid != OID_PBES2 {
        return Err(unsupported);
    }
    let (params, _) = want(params, 0x30)?;
    let (kdf, rest) = want(params, 0x30)?;
    let (enc, _) = want(rest, 0x30)?;
    let (kdf_oid, kdf_params) = want(kdf, 0x06)?;
    if kdf_oid != OID_PBKDF2 {
        return Err(unsupported);
    }
    let (kdf_params, _) = want(kdf_params, 0x30)?;
    let (salt, rest) = want(kdf_params, 0x04)?;
    let (iter, mut rest) = want(rest, 0x02)?;
    if let Some(key_length) = der::expect(rest, 0x02) {
        rest = key_length.rest;
    }
    if let Some(prf) = der::expect(rest, 0x30) {
        let (prf_oid, _) = want(prf.content, 0x06)?;
        if prf_oid != OID_HMAC_SHA256 {
            return Err(unsupported);
        }
    } else {
        return Err(unsupported); // default PRF is HMAC-SHA1
    }
    let (enc_oid, iv) = want(enc, 0x06)?;
    if enc_oid != OID_AES256_CBC {
        return Err(unsupported);
    }
    let (iv, _) = want(iv, 0x04)?;
    let iterations =
        std::num::NonZeroU32::new(uint(iter)).ok_or(P12Error::Unsupported("zero iterations"))?;
    if iterations.get() > 10_000_000 || iv.len() != 16 {
        return Err(unsupported);
    }
    let mut kek = [0u8; 32];
    pbkdf2::derive(
        pbkdf2::PBKDF2_HMAC_SHA256,
        iterations,
        salt,
        password.as_bytes(),
        &mut kek,
    );
    let crypto = |e: aws_lc_rs::error::Unspecified| P12Error::Crypto(e.to_string());
    let key =
        PaddedBlockDecryptingKey::cbc_pkcs7(UnboundCipherKey::new(&AES_256, &kek).map_err(crypto)?)
            .map_err(crypto)?;
    let mut iv16 = [0u8; 16];
    iv16.copy_from_slice(iv);
    let mut buf = encrypted.to_vec();
    let plain = key
        .decrypt(&mut buf, DecryptionContext::Iv128(iv16.into()))
        .map_err(|_| P12Error::WrongPassword)?;
    Ok(plain.to_vec())
}

/// The legacy form's key: pbeWithSHAAnd3-KeyTripleDES-CBC.
fn decrypt_legacy_key(
    params: &[u8],
    encrypted: &[u8],
    password: &str,
) -> Result<Vec<u8>, P12Error> {
    let (params, _) = want(params, 0x30)?;
    let (salt, rest) = want(params, 0x04)?;
    let (iter, _) = want(rest, 0x02)?;
    let iterations = uint(iter);
    if iterations == 0 || iterations > 10_000_000 {
        return Err(P12Error::Unsupported("unreasonable iteration count"));
    }
    let sha1 = &digest::SHA1_FOR_LEGACY_USE_ONLY;
    let key = pkcs12_kdf_with(sha1, password, salt, 1, iterations, 24);
    let iv = pkcs12_kdf_with(sha1, password, salt, 2, iterations, 8);
    tdes_cbc_decrypt(&key, &iv, encrypted).ok_or(P12Error::WrongPassword)
}

/// 3DES (EDE, three keys) in CBC mode with PKCS#7 padding.
fn tdes_cbc_encrypt(key: &[u8], iv: &[u8], plain: &[u8]) -> Result<Vec<u8>, P12Error> {
    use cbc::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
    let cipher = cbc::Encryptor::<des::TdesEde3>::new_from_slices(key, iv)
        .map_err(|_| P12Error::Crypto("3DES wants a 24-octet key and an 8-octet IV".into()))?;
    Ok(cipher.encrypt_padded_vec_mut::<Pkcs7>(plain))
}

/// The inverse of `tdes_cbc_encrypt`; `None` when the padding is wrong
/// (a wrong password, almost always).
fn tdes_cbc_decrypt(key: &[u8], iv: &[u8], encrypted: &[u8]) -> Option<Vec<u8>> {
    use cbc::cipher::{BlockDecryptMut, KeyIvInit, block_padding::Pkcs7};
    cbc::Decryptor::<des::TdesEde3>::new_from_slices(key, iv)
        .ok()?
        .decrypt_padded_vec_mut::<Pkcs7>(encrypted)
        .ok()
}
