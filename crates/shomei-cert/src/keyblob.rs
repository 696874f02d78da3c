//! An RSA key in PKCS#8 as CryptoAPI's `CryptImportKey` takes it (a
//! `PRIVATEKEYBLOB`): the Windows store's way in. Plain bytes, so it is
//! built and tested on every system.

const PRIVATEKEYBLOB: u8 = 7;
const CALG_RSA_KEYX: u32 = 0xa400;

/// One DER element: (tag, contents, rest).
fn der(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, b) = b.split_first()?;
    let (&l, mut b) = b.split_first()?;
    let len = if l < 0x80 {
        l as usize
    } else {
        let n = (l & 0x7f) as usize;
        if n == 0 || n > 4 || b.len() < n {
            return None;
        }
        let v = b[..n].iter().fold(0usize, |a, x| (a << 8) | *x as usize);
        b = &b[n..];
        v
    };
    (b.len() >= len).then(|| (tag, &b[..len], &b[len..]))
}

/// The private-key blob CryptImportKey takes, from an RSA key in PKCS#8:
/// BLOBHEADER, RSAPUBKEY, then modulus, primes, exponents, coefficient and
/// private exponent, each little-endian at its fixed width.
pub fn private_key_blob(pkcs8: &[u8]) -> Result<Vec<u8>, String> {
    let bad = || "not an RSA key in PKCS#8".to_owned();
    let (_, info, _) = der(pkcs8).ok_or_else(bad)?;
    let (_, _version, rest) = der(info).ok_or_else(bad)?;
    let (_, _alg, rest) = der(rest).ok_or_else(bad)?;
    let (tag, rsa, _) = der(rest).ok_or_else(bad)?;
    if tag != 0x04 {
        return Err(bad());
    }
    let (_, mut fields, _) = der(rsa).ok_or_else(bad)?;
    let mut ints = Vec::new();
    while let Some((tag, v, rest)) = der(fields) {
        if tag != 0x02 {
            return Err(bad());
        }
        let v: &[u8] = match v.iter().position(|b| *b != 0) {
            Some(i) => &v[i..],
            None => &[],
        };
        ints.push(v);
        fields = rest;
    }
    let [_, n, e, d, p, q, dp, dq, qinv] = ints[..] else {
        return Err(bad());
    };
    let bits = n.len() * 8;
    if e.len() > 4 || bits % 16 != 0 {
        return Err(bad());
    }
    let mut out = Vec::with_capacity(20 + bits / 8 * 9 / 2);
    out.extend_from_slice(&[PRIVATEKEYBLOB, 2, 0, 0]);
    out.extend_from_slice(&CALG_RSA_KEYX.to_le_bytes());
    out.extend_from_slice(b"RSA2");
    out.extend_from_slice(&(bits as u32).to_le_bytes());
    let exp = e.iter().fold(0u32, |a, x| (a << 8) | *x as u32);
    out.extend_from_slice(&exp.to_le_bytes());
    let mut put = |v: &[u8], width: usize| -> Result<(), String> {
        if v.len() > width {
            return Err(bad());
        }
        out.extend(v.iter().rev());
        out.extend(std::iter::repeat_n(0u8, width - v.len()));
        Ok(())
    };
    put(n, bits / 8)?;
    put(p, bits / 16)?;
    put(q, bits / 16)?;
    put(dp, bits / 16)?;
    put(dq, bits / 16)?;
    put(qinv, bits / 16)?;
    put(d, bits / 8)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_private_key_blob_has_the_layout_cryptoapi_reads() {
        let key =
            rcgen::KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
                .unwrap();
        let blob = private_key_blob(&key.serialize_der()).unwrap();
        assert_eq!(&blob[..8], &[7, 2, 0, 0, 0x00, 0xa4, 0, 0]);
        assert_eq!(&blob[8..12], b"RSA2");
        assert_eq!(u32::from_le_bytes(blob[12..16].try_into().unwrap()), 2048);
        assert_eq!(u32::from_le_bytes(blob[16..20].try_into().unwrap()), 65537);
        assert_eq!(blob.len(), 20 + 256 + 5 * 128 + 256);
        assert!(private_key_blob(b"\x30\x03\x02\x01\x00").is_err());
    }
}
