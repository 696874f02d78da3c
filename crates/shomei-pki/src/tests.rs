use std::os::unix::fs::PermissionsExt;

use ::time::macros::datetime;
use x509_parser::prelude::*;

use super::*;

fn ca(dir: &Path) -> Ca {
    Ca::load_or_create(
        dir,
        "Test Bank",
        Endpoints::under("https://localhost:8443"),
        datetime!(2026-01-01 00:00 UTC),
    )
    .unwrap()
}

#[test]
fn creates_a_two_tier_ca_once_with_private_keys_0600() {
    let tmp = tempfile::tempdir().unwrap();
    let a = ca(tmp.path());
    for key in [ROOT_KEY, ISSUING_KEY] {
        let mode = std::fs::metadata(tmp.path().join(key))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{key}");
    }
    let b = ca(tmp.path());
    assert_eq!(a.root_der(), b.root_der(), "a second start reuses the CA");
    let (_, root) = parse_x509_certificate(a.root_der()).unwrap();
    let (_, issuing) = parse_x509_certificate(a.issuing_der()).unwrap();
    assert!(root.is_ca() && issuing.is_ca());
    assert_eq!(issuing.issuer(), root.subject());
    issuing.verify_signature(Some(root.public_key())).unwrap();
}

#[test]
fn client_certificates_follow_our_profile() {
    let tmp = tempfile::tempdir().unwrap();
    let a = ca(tmp.path());
    let key = generate_p256().unwrap();
    let nb = datetime!(2026-01-01 00:00:00.5 UTC);
    let issued = a
        .issue_client(
            &key,
            &ClientSubject {
                login_id: "hanakodt",
                company_name: "株式会社ほくぎん商事",
            },
            nb,
            nb + Duration::days(365),
        )
        .unwrap();
    assert_eq!(issued.serial.len(), 16);
    assert!(issued.serial[0] & 0x80 == 0 && issued.serial[0] != 0);
    let (_, c) = parse_x509_certificate(&issued.der).unwrap();
    assert_eq!(c.raw_serial(), &issued.serial[..]);
    let cn: Vec<_> = c
        .subject()
        .iter_common_name()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(cn, ["hanakodt"]);
    // countryName is a PrintableString (RFC 5280), in the subject and in the
    // issuer, whose bytes are the issuing CA's subject.
    let (_, issuing) = parse_x509_certificate(a.issuing_der()).unwrap();
    for name in [c.subject(), c.issuer(), issuing.subject()] {
        let country: Vec<_> = name.iter_country().map(|a| a.attr_value().tag()).collect();
        assert_eq!(
            country,
            [x509_parser::der_parser::asn1_rs::Tag::PrintableString]
        );
    }
    assert_eq!(c.issuer().as_raw(), issuing.subject().as_raw());
    assert!(!c.is_ca());
    let eku = c.extended_key_usage().unwrap().unwrap().value;
    assert!(eku.client_auth && !eku.server_auth);
    let ku = c.key_usage().unwrap().unwrap().value;
    assert!(ku.digital_signature() && !ku.key_cert_sign());
    let mut saw_cdp = false;
    let mut saw_aia = false;
    for ext in c.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::CRLDistributionPoints(cdp) => {
                saw_cdp = format!("{cdp:?}").contains("https://localhost:8443/pki/crl");
            }
            ParsedExtension::AuthorityInfoAccess(aia) => {
                saw_aia = format!("{aia:?}").contains("https://localhost:8443/pki/ocsp");
            }
            _ => {}
        }
    }
    assert!(saw_cdp && saw_aia);
    c.verify_signature(Some(issuing.public_key())).unwrap();
    assert_eq!(
        c.validity().not_before.to_datetime(),
        datetime!(2026-01-01 00:00 UTC)
    );
}

#[test]
fn crl_lists_serials_with_number_reason_and_aki() {
    let tmp = tempfile::tempdir().unwrap();
    let a = ca(tmp.path());
    let now = datetime!(2026-01-02 00:00 UTC);
    let serials = [vec![0x41, 0x02, 0x03], vec![0x7f; 16], vec![0xc0; 16]];
    let entries = serials
        .iter()
        .enumerate()
        .map(|(i, s)| crate::crl::CrlEntry {
            serial: s,
            revoked_at: now,
            reason: [Some(5), None, Some(4)][i],
            invalidity: None,
        });
    let signer = a.crl_signer().unwrap();
    let der = signer
        .sign(entries, &header(300, crate::crl::CrlKind::Full, now, None))
        .unwrap();
    let (rest, crl) = parse_x509_crl(&der).unwrap();
    assert!(rest.is_empty());
    assert_eq!(
        crl.crl_number().map(|n| n.to_string()),
        Some("300".to_string())
    );
    assert_eq!(crate::crl::crl_number_of(&der), Some(300), "read alone");
    for n in [0u64, 127, 128, 1 << 40, u64::MAX >> 1] {
        let d = signer
            .sign(
                std::iter::empty(),
                &header(n, crate::crl::CrlKind::Full, now, None),
            )
            .unwrap();
        assert_eq!(crate::crl::crl_number_of(&d), Some(n), "number {n}");
    }
    assert_eq!(crate::crl::crl_number_of(&der[..der.len() / 2]), None);
    assert_eq!(crate::crl::crl_number_of(b"not a CRL"), None);
    let got: Vec<_> = crl
        .iter_revoked_certificates()
        .map(|r| (r.raw_serial().to_vec(), r.reason_code().map(|c| c.1.0)))
        .collect();
    assert_eq!(
        got,
        vec![
            (vec![0x41, 0x02, 0x03], Some(5)),
            (vec![0x7f; 16], None),
            (
                vec![0x00].into_iter().chain(vec![0xc0; 16]).collect(),
                Some(4)
            ),
        ]
    );
    assert!(crl.extensions().iter().any(|e| matches!(
        e.parsed_extension(),
        ParsedExtension::AuthorityKeyIdentifier(_)
    )));
    let (_, issuing) = parse_x509_certificate(a.issuing_der()).unwrap();
    crl.verify_signature(issuing.public_key()).unwrap();
    assert_eq!(crl.last_update().timestamp(), now.unix_timestamp());
}

#[test]
fn an_empty_crl_and_a_delta_crl_are_well_formed() {
    let tmp = tempfile::tempdir().unwrap();
    let a = ca(tmp.path());
    let now = datetime!(2026-01-02 00:00 UTC);
    let signer = a.crl_signer().unwrap();
    let empty = signer
        .sign(
            std::iter::empty(),
            &header(1, crate::crl::CrlKind::Full, now, None),
        )
        .unwrap();
    let (_, crl) = parse_x509_crl(&empty).unwrap();
    assert_eq!(crl.iter_revoked_certificates().count(), 0);
    let s = [0x42u8; 16];
    let one = std::iter::once(crate::crl::CrlEntry {
        serial: &s,
        revoked_at: now,
        reason: Some(1),
        invalidity: Some(datetime!(2025-12-31 23:59:58 UTC)),
    });
    let delta = signer
        .sign(
            one,
            &header(
                8,
                crate::crl::CrlKind::Delta { base: 7 },
                now,
                Some("http://localhost:8480/pki/crl/3"),
            ),
        )
        .unwrap();
    let (_, crl) = parse_x509_crl(&delta).unwrap();
    let indicator = crl
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "2.5.29.27")
        .unwrap();
    assert!(indicator.critical);
    assert_eq!(indicator.value, &[0x02, 0x01, 0x07], "base CRL number 7");
    let idp = crl
        .extensions()
        .iter()
        .find(|e| e.oid.to_id_string() == "2.5.29.28")
        .expect("a partition's CRL names its distribution point");
    assert!(idp.critical, "RFC 5280 §5.2.5: critical");
    let ParsedExtension::IssuingDistributionPoint(p) = idp.parsed_extension() else {
        panic!("unparsable IDP: {:?}", idp.parsed_extension())
    };
    let Some(x509_parser::extensions::DistributionPointName::FullName(names)) =
        &p.distribution_point
    else {
        panic!("no full name in {p:?}")
    };
    assert!(matches!(
        names.as_slice(),
        [x509_parser::extensions::GeneralName::URI(
            "http://localhost:8480/pki/crl/3"
        )]
    ));
    assert!(!p.only_contains_user_certs && p.only_some_reasons.is_none());
    let (_, full) = parse_x509_crl(&empty).unwrap();
    assert!(
        !full
            .extensions()
            .iter()
            .any(|e| e.oid.to_id_string() == "2.5.29.28"),
        "a CRL for every certificate has no IDP"
    );
}

fn header(
    number: u64,
    kind: crate::crl::CrlKind,
    now: ::time::OffsetDateTime,
    scope_url: Option<&str>,
) -> crate::crl::CrlHeader<'_> {
    crate::crl::CrlHeader {
        number,
        kind,
        this_update: now,
        next_update: now + Duration::days(1),
        scope_url,
    }
}

#[test]
fn the_server_certificate_is_reused_while_valid() {
    let tmp = tempfile::tempdir().unwrap();
    let a = ca(tmp.path());
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    let now = datetime!(2026-01-01 00:00 UTC);
    let (c1, _) = a.server_tls(&names, now).unwrap();
    let (c2, _) = a.server_tls(&names, now).unwrap();
    assert_eq!(c1[0], c2[0]);
    let (c3, _) = a.server_tls(&names, now + Duration::days(340)).unwrap();
    assert_ne!(c1[0], c3[0], "renewed when it would expire within 30 days");
}

#[test]
fn a_large_crl_with_every_entry_form_parses_and_verifies() {
    let tmp = tempfile::tempdir().unwrap();
    let a = ca(tmp.path());
    let now = datetime!(2026-01-02 00:00 UTC);
    let late = datetime!(2051-03-04 05:06:07 UTC);
    // Serials of 1–20 octets, some with the high bit set, some with leading
    // zero octets given; UTCTime and GeneralizedTime; with and without reason.
    let serials: Vec<Vec<u8>> = (0..3000u32)
        .map(|i| {
            let len = 1 + (i % 20) as usize;
            let mut s: Vec<u8> = (0..len)
                .map(|k| (i as u8).wrapping_mul(31).wrapping_add(k as u8) | 1)
                .collect();
            if i % 7 == 0 {
                s.insert(0, 0);
            }
            s
        })
        .collect();
    let entries = serials
        .iter()
        .enumerate()
        .map(|(i, s)| crate::crl::CrlEntry {
            serial: s,
            revoked_at: if i % 5 == 0 { late } else { now },
            reason: [None, Some(1), Some(4), Some(0)][i % 4],
            invalidity: (i % 3 == 0).then_some(now - Duration::days(i as i64)),
        });
    let signer = a.crl_signer().unwrap();
    let der = signer
        .sign(
            entries,
            &crate::crl::CrlHeader {
                number: 70_000,
                kind: crate::crl::CrlKind::Full,
                this_update: now,
                next_update: late,
                scope_url: None,
            },
        )
        .unwrap();
    let (rest, crl) = parse_x509_crl(&der).unwrap();
    assert!(rest.is_empty());
    let (_, issuing) = parse_x509_certificate(a.issuing_der()).unwrap();
    crl.verify_signature(issuing.public_key()).unwrap();
    let got: Vec<_> = crl.iter_revoked_certificates().collect();
    assert_eq!(got.len(), serials.len());
    for (i, (r, s)) in got.iter().zip(&serials).enumerate() {
        let want = s
            .iter()
            .skip_while(|b| **b == 0)
            .copied()
            .collect::<Vec<_>>();
        let raw = r.raw_serial();
        let raw = if raw.len() > 1 && raw[0] == 0 {
            &raw[1..]
        } else {
            raw
        };
        assert_eq!(raw, &want[..], "entry {i}");
        let t = if i % 5 == 0 { late } else { now };
        assert_eq!(
            r.revocation_date.timestamp(),
            t.unix_timestamp(),
            "entry {i}"
        );
        let reason = [None, Some(1), Some(4), None][i % 4];
        assert_eq!(r.reason_code().map(|c| c.1.0), reason, "entry {i}");
        let invalidity = r
            .extensions()
            .iter()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::InvalidityDate(t) => Some(t.timestamp()),
                _ => None,
            });
        let want = (i % 3 == 0).then_some((now - Duration::days(i as i64)).unix_timestamp());
        assert_eq!(invalidity, want, "entry {i}");
    }
}

#[test]
fn built_ocsp_requests_parse_and_name_our_issuer() {
    let tmp = tempfile::tempdir().unwrap();
    let a = ca(tmp.path());
    let issuer = crate::ocsp::IssuerHashes::of(a.issuing_der()).unwrap();
    for serial in [vec![0x41, 0x02], vec![0xc0; 16], vec![0, 0, 7]] {
        let req = crate::ocsp::parse_request(&issuer.request(&serial)).unwrap();
        assert_eq!(req.ids.len(), 1);
        assert!(issuer.matches(&req.ids[0]));
        let want: Vec<u8> = serial.iter().copied().skip_while(|b| *b == 0).collect();
        let got: Vec<u8> = req.ids[0]
            .serial
            .iter()
            .copied()
            .skip_while(|b| *b == 0)
            .collect();
        assert_eq!(got, want);
        assert!(req.nonce.is_none());
    }
}

#[test]
fn no_certificate_outlives_the_issuing_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let a = ca(tmp.path());
    let key = generate_p256().unwrap();
    let nb = datetime!(2035-06-01 00:00 UTC);
    let issued = a
        .issue_client(
            &key,
            &ClientSubject {
                login_id: "hanakodt",
                company_name: "x",
            },
            nb,
            nb + Duration::days(365),
        )
        .unwrap();
    assert_eq!(issued.not_after, a.issuing_not_after());
    let (_, c) = parse_x509_certificate(&issued.der).unwrap();
    assert_eq!(c.validity().not_after.to_datetime(), a.issuing_not_after());
    assert!(a.issuing_not_after() < nb + Duration::days(365));
}

#[test]
fn partitioned_certificates_name_their_partition_and_its_delta() {
    let tmp = tempfile::tempdir().unwrap();
    let a = Ca::load_or_create(
        tmp.path(),
        "Test Bank",
        Endpoints::with_pki("https://localhost:8443", "http://localhost:8480")
            .with_crl_partitions(16),
        datetime!(2026-01-01 00:00 UTC),
    )
    .unwrap();
    let key = generate_p256().unwrap();
    let nb = datetime!(2026-01-01 00:00 UTC);
    let mut partitions = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let issued = a
            .issue_client(
                &key,
                &ClientSubject {
                    login_id: "hanakodt",
                    company_name: "x",
                },
                nb,
                nb + Duration::days(365),
            )
            .unwrap();
        let CrlScope::Partition(p) = issued.crl_scope else {
            panic!("with partitions, no new certificate names the undivided CRL")
        };
        assert!(p < 16);
        assert_eq!(issued.crl_scope, CrlScope::for_serial(&issued.serial, 16));
        partitions.insert(p);
        let (_, c) = parse_x509_certificate(&issued.der).unwrap();
        let mut cdp = None;
        let mut freshest = None;
        for ext in c.extensions() {
            match ext.parsed_extension() {
                ParsedExtension::CRLDistributionPoints(d) => cdp = Some(format!("{d:?}")),
                _ if ext.oid.to_id_string() == "2.5.29.46" => {
                    freshest = Some(String::from_utf8_lossy(ext.value).into_owned())
                }
                _ => {}
            }
        }
        let cdp = cdp.unwrap();
        assert!(
            cdp.contains(&format!("\"http://localhost:8480/pki/crl/{p}\"")),
            "{cdp}"
        );
        assert!(
            freshest
                .unwrap()
                .ends_with(&format!("http://localhost:8480/pki/delta-crl/{p}")),
            "the Freshest CRL is the partition's delta"
        );
    }
    assert!(partitions.len() > 5, "serials spread: {partitions:?}");
}

#[test]
fn a_kept_crl_reads_back_with_its_entries_where_they_are() {
    use crate::crl::{CrlEntry, CrlKind, CrlList, read_kept};
    let tmp = tempfile::tempdir().unwrap();
    let a = ca(tmp.path());
    let now = datetime!(2026-01-02 03:04:05 UTC);
    let url = "http://localhost:8480/pki/crl/7.crl";
    let serials = [vec![0x41, 0x02, 0x03], vec![0x7f; 16], vec![0xc0; 16]];
    let entries = || {
        serials.iter().enumerate().map(|(i, s)| CrlEntry {
            serial: s,
            revoked_at: now,
            reason: [Some(5), None, Some(4)][i],
            invalidity: None,
        })
    };
    let signer = a.crl_signer().unwrap();
    let der = signer
        .sign(entries(), &header(300, CrlKind::Full, now, Some(url)))
        .unwrap();
    let k = read_kept(&der, a.issuing_der()).unwrap();
    assert_eq!(
        (k.number, k.delta_base, k.this_update, k.next_update),
        (300, None, now, now + Duration::days(1))
    );
    assert_eq!(k.scope_url.as_deref(), Some(url));
    assert_eq!(k.entries, 3);
    let got: Vec<Vec<u8>> = k.serials(&der).map(|s| s.to_vec()).collect();
    assert_eq!(
        got,
        vec![
            vec![0x41, 0x02, 0x03],
            vec![0x7f; 16],
            [vec![0], vec![0xc0; 16]].concat()
        ]
    );
    // The next CRL signed over the kept entries and one more lists all four.
    let mut list = CrlList::from_encoded(&der[k.entries_at()], 0);
    list.push(&CrlEntry {
        serial: &[0x55; 16],
        revoked_at: now,
        reason: None,
        invalidity: None,
    });
    let next = signer
        .sign_list(list, &header(301, CrlKind::Full, now, Some(url)))
        .unwrap();
    let (_, c) = parse_x509_crl(&next).unwrap();
    assert_eq!(c.iter_revoked_certificates().count(), 4);
    let (_, issuing) = parse_x509_certificate(a.issuing_der()).unwrap();
    c.verify_signature(issuing.public_key()).unwrap();
    assert_eq!(read_kept(&next, a.issuing_der()).unwrap().entries, 4);

    let delta = signer
        .sign(
            std::iter::empty(),
            &header(302, CrlKind::Delta { base: 300 }, now, Some(url)),
        )
        .unwrap();
    let d = read_kept(&delta, a.issuing_der()).unwrap();
    assert_eq!((d.number, d.delta_base, d.entries), (302, Some(300), 0));
    assert_eq!(d.serials(&delta).count(), 0);

    // Refused: any octet changed, cut short, one more, another CA's.
    for at in [der.len() / 2, 20, der.len() - 3] {
        let mut changed = der.clone();
        changed[at] ^= 0x01;
        assert!(read_kept(&changed, a.issuing_der()).is_err(), "octet {at}");
    }
    assert_eq!(
        read_kept(&der[..der.len() - 1], a.issuing_der())
            .err()
            .as_deref(),
        Some("not a CRL of ours: no outer SEQUENCE")
    );
    let mut longer = der.clone();
    longer.push(0);
    assert_eq!(
        read_kept(&longer, a.issuing_der()).err().as_deref(),
        Some("not a CRL of ours: octets after it")
    );
    let other = tempfile::tempdir().unwrap();
    let b = ca(other.path());
    assert_eq!(
        read_kept(&der, b.issuing_der()).err().as_deref(),
        Some("CRL not signed by the issuing CA")
    );
}

/// The TBSCertList of a CRL: everything its signature covers.
fn tbs_of(der: &[u8]) -> &[u8] {
    let outer = crate::der::expect(der, 0x30).expect("a SEQUENCE");
    crate::der::expect(outer.content, 0x30)
        .expect("a TBSCertList")
        .raw
}

/// A CRL made the way a partition's is from one generation to the next
/// (its entries kept encoded: a kept copy's octets taken over, entries
/// appended one by one or as a list made apart, a copy with room, signed
/// where it was written) is, octet for octet, the CRL made from scratch
/// over the same entries: random serials (one to twenty octets, leading
/// zeros, the top bit set), times on both sides of 2050, reasons and
/// invalidity dates. Both signatures verify and openssl reads every entry.
#[test]
fn a_crl_made_incrementally_is_the_crl_made_from_scratch() {
    use crate::crl::{CrlEntry, CrlKind, CrlList, read_kept};
    use rand::{Rng, SeedableRng};
    let tmp = tempfile::tempdir().unwrap();
    let a = ca(tmp.path());
    let signer = a.crl_signer().unwrap();
    let url = "http://localhost:8480/pki/crl/5";
    let time = |rng: &mut rand::rngs::StdRng| {
        // 1950 to 2100: UTCTime and GeneralizedTime.
        ::time::OffsetDateTime::from_unix_timestamp(rng.random_range(-631_152_000..4_102_444_800))
            .unwrap()
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(26);
    let mut number = 1u64;
    for case in 0..30 {
        let n = if case % 10 == 9 {
            rng.random_range(2_000..6_000)
        } else {
            rng.random_range(0..300)
        };
        type Entry = (
            Vec<u8>,
            ::time::OffsetDateTime,
            Option<u8>,
            Option<::time::OffsetDateTime>,
        );
        let entries: Vec<Entry> = (0..n)
            .map(|_| {
                let len = rng.random_range(1..=20);
                let mut serial: Vec<u8> = (0..len).map(|_| rng.random()).collect();
                if rng.random_bool(0.2) {
                    serial[0] = 0;
                }
                let reason = match rng.random_range(0..4) {
                    0 => None,
                    1 => Some(0),
                    _ => Some(rng.random_range(1..=10)),
                };
                let invalidity = rng.random_bool(0.3).then(|| time(&mut rng));
                (serial, time(&mut rng), reason, invalidity)
            })
            .collect();
        fn entry(e: &Entry) -> CrlEntry<'_> {
            CrlEntry {
                serial: &e.0,
                revoked_at: e.1,
                reason: e.2,
                invalidity: e.3,
            }
        }
        let now = time(&mut rng);
        let mut list = CrlList::default();
        let mut listed = 0usize;
        let mut last: Option<Vec<u8>> = None;
        while listed < n || last.is_none() {
            let upto = (listed + rng.random_range(0..=n / 3 + 1)).min(n);
            let more = &entries[listed..upto];
            match rng.random_range(0..3) {
                // Revocations added to the list as they come.
                0 => more.iter().for_each(|e| list.push(&entry(e))),
                // Revoked while the lists were made again: a list apart, joined.
                1 => {
                    let mut apart = CrlList::default();
                    more.iter().for_each(|e| apart.push(&entry(e)));
                    list.append(&apart);
                }
                // Served from the kept copy of the last CRL, added after.
                _ => {
                    if let Some(der) = &last {
                        let kept = read_kept(der, a.issuing_der()).unwrap();
                        assert_eq!(kept.entries, listed, "case {case}");
                        list = CrlList::from_encoded(&der[kept.entries_at()], 0);
                    }
                    more.iter().for_each(|e| list.push(&entry(e)));
                }
            }
            listed = upto;
            number += 1;
            let h = header(number, CrlKind::Full, now, Some(url));
            let incremental = signer
                .sign_in_place(list.clone_with_room(0), &h)
                .unwrap()
                .der()
                .to_vec();
            let scratch = signer
                .sign(entries[..listed].iter().map(entry), &h)
                .unwrap();
            assert_eq!(
                tbs_of(&incremental),
                tbs_of(&scratch),
                "case {case}, {listed} entries"
            );
            for der in [&incremental, &scratch] {
                let k = read_kept(der, a.issuing_der()).unwrap();
                assert_eq!((k.number, k.entries), (number, listed), "case {case}");
            }
            // The same list signed again (no copy) says the same.
            let again = signer.sign_list(list.clone_with_room(0), &h).unwrap();
            assert_eq!(tbs_of(&again), tbs_of(&scratch), "case {case}");
            last = Some(incremental);
        }
        let file = tmp.path().join(format!("crl-{case}.der"));
        std::fs::write(&file, last.unwrap()).unwrap();
        let out = std::process::Command::new("openssl")
            .args(["crl", "-inform", "DER", "-noout", "-text", "-in"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            text.matches("Serial Number:").count(),
            n,
            "case {case}: openssl reads every entry"
        );
        if n == 0 {
            assert!(text.contains("No Revoked Certificates"), "{text}");
        }
    }
}

/// The CertID a pre-signed OCSP answer is for is recognised in place: the
/// CertID of `IssuerHashes::request` for any serial (leading zeros, top
/// bit set), and nothing else: without NULL parameters, a serial with a
/// superfluous zero octet, another issuer's hashes, SHA-256.
#[test]
fn the_canonical_cert_id_is_recognised_and_no_other_spelling() {
    use crate::der::{integer, tlv};
    use crate::ocsp::{CertId, CertIdHash, IssuerHashes, parse_request};
    use rand::{Rng, SeedableRng};
    let tmp = tempfile::tempdir().unwrap();
    let a = ca(tmp.path());
    let issuer = IssuerHashes::of(a.issuing_der()).unwrap();
    let other_dir = tempfile::tempdir().unwrap();
    let other = IssuerHashes::of(ca(other_dir.path()).issuing_der()).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(6960);
    for _ in 0..200 {
        let len = rng.random_range(1..=20);
        let mut serial: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        if rng.random_bool(0.2) {
            serial[0] = 0;
        }
        let id = parse_request(&issuer.request(&serial))
            .unwrap()
            .ids
            .remove(0);
        assert!(issuer.is_canonical(&id), "{serial:02x?}");
        assert!(!other.is_canonical(&id), "another issuer's");
        // The same CertID spelt otherwise.
        let content = &crate::der::expect(&id.raw, 0x30).unwrap().content;
        let hashes = &content[11..11 + 44];
        let spelt = |alg: &[u8], int: &[u8]| CertId {
            raw: tlv(0x30, &[alg, hashes, int].concat()),
            ..id.clone()
        };
        let null = [
            0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00,
        ];
        let bare = [0x30, 0x07, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a];
        let minimal = integer(&serial);
        assert!(issuer.is_canonical(&spelt(&null, &minimal)), "control");
        assert!(!issuer.is_canonical(&spelt(&bare, &minimal)), "no NULL");
        let mut padded = vec![0x02, minimal[1] + 1, 0x00];
        padded.extend_from_slice(&minimal[2..]);
        assert!(
            !issuer.is_canonical(&spelt(&null, &padded)),
            "a zero octet more"
        );
        let sha256 = CertId {
            hash: CertIdHash::Sha256,
            ..id.clone()
        };
        assert!(!issuer.is_canonical(&sha256), "SHA-256");
    }
}
