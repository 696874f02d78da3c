//! Counters for operators, served as Prometheus text on the metrics
//! listener: TLS handshakes, logins, issuances, revocations, OCSP, CRLs and
//! request latency per listener. Plain atomics: recording one costs a few
//! nanoseconds and never takes a lock.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use shomei_pki::ocsp::CertStatus;

/// How many listeners there are.
const LISTENERS: usize = 5;

/// The server's listeners, as metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Portal,
    Cert,
    Pki,
    Metrics,
    /// The operator console (operator certificates required).
    Operator,
}

impl Listener {
    const ALL: [Listener; LISTENERS] = [
        Listener::Portal,
        Listener::Cert,
        Listener::Pki,
        Listener::Metrics,
        Listener::Operator,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Listener::Portal => "portal",
            Listener::Cert => "cert",
            Listener::Pki => "pki",
            Listener::Metrics => "metrics",
            Listener::Operator => "operator",
        }
    }
}

/// Why a connection was closed before it was served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnRefusal {
    /// The listener holds as many connections as it may.
    ListenerFull,
    /// The client's address holds as many as one address may.
    AddressFull,
    /// No TLS handshake finished in time.
    HandshakeTimeout,
}

impl ConnRefusal {
    const ALL: [ConnRefusal; 3] = [
        ConnRefusal::ListenerFull,
        ConnRefusal::AddressFull,
        ConnRefusal::HandshakeTimeout,
    ];

    fn label(self) -> &'static str {
        match self {
            ConnRefusal::ListenerFull => "listener_full",
            ConnRefusal::AddressFull => "address_full",
            ConnRefusal::HandshakeTimeout => "handshake_timeout",
        }
    }
}

/// Upper bounds of the request-latency buckets, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

#[derive(Default)]
struct Histogram {
    /// Cumulative only when rendered; each observation lands in one slot
    /// (the last slot is +Inf).
    slots: [AtomicU64; BUCKETS.len() + 1],
    sum_micros: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        let i = BUCKETS
            .iter()
            .position(|b| s <= *b)
            .unwrap_or(BUCKETS.len());
        self.slots[i].fetch_add(1, Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros().min(u128::from(u64::MAX)) as u64, Relaxed);
    }
}

/// What a login attempt was made with.
#[derive(Debug, Clone, Copy)]
pub enum LoginMethod {
    Password,
    Certificate,
}

#[derive(Default)]
pub struct Metrics {
    handshakes_ok: [AtomicU64; LISTENERS],
    handshakes_failed: [AtomicU64; LISTENERS],
    revoked_refused: AtomicU64,
    requests: [Histogram; LISTENERS],
    connections_open: [AtomicU64; LISTENERS],
    /// By listener, then by `ConnRefusal`.
    connections_refused: [[AtomicU64; 3]; LISTENERS],
    accept_errors: [AtomicU64; LISTENERS],
    password_busy: AtomicU64,
    revocation_notices: AtomicU64,
    password_claim_refused: AtomicU64,
    password_dummy: AtomicU64,
    /// [password ok, password refused, certificate ok, certificate refused]
    logins: [AtomicU64; 4],
    issued_enroll: AtomicU64,
    issued_renew: AtomicU64,
    issuance_refused: AtomicU64,
    logins_throttled: AtomicU64,
    /// Device cookies brought with a login: [accepted, refused].
    device_cookies: [AtomicU64; 2],
    revocations: AtomicU64,
    /// [good, revoked, unknown, malformed or failed]
    ocsp: [AtomicU64; 4],
    ocsp_cache_hits: AtomicU64,
    chain_cache_hits: AtomicU64,
    crl_generations: AtomicU64,
    crl_generation_micros: AtomicU64,
}

impl Metrics {
    pub fn handshake(&self, l: Listener, ok: bool) {
        let i = l as usize;
        if ok {
            self.handshakes_ok[i].fetch_add(1, Relaxed);
        } else {
            self.handshakes_failed[i].fetch_add(1, Relaxed);
        }
    }

    /// A client certificate refused because it is revoked.
    pub fn revoked_certificate_refused(&self) {
        self.revoked_refused.fetch_add(1, Relaxed);
    }

    /// A request answered on `l`, taking `d` until the response head.
    pub fn request(&self, l: Listener, d: Duration) {
        self.requests[l as usize].observe(d);
    }

    pub(crate) fn login(&self, method: LoginMethod, ok: bool) {
        let i = match method {
            LoginMethod::Password => 0,
            LoginMethod::Certificate => 2,
        } + usize::from(!ok);
        self.logins[i].fetch_add(1, Relaxed);
    }

    /// A connection accepted on `l` (`opened`) or closed.
    pub fn connection(&self, l: Listener, opened: bool) {
        let c = &self.connections_open[l as usize];
        if opened {
            c.fetch_add(1, Relaxed);
        } else {
            let _ = c.fetch_update(Relaxed, Relaxed, |n| n.checked_sub(1));
        }
    }

    pub fn connection_refused(&self, l: Listener, why: ConnRefusal) {
        self.connections_refused[l as usize][why as usize].fetch_add(1, Relaxed);
    }

    /// `accept` failed on `l` (EMFILE and friends); the loop backs off.
    pub fn accept_error(&self, l: Listener) {
        self.accept_errors[l as usize].fetch_add(1, Relaxed);
    }

    /// A revocation notice from PostgreSQL woke the watch.
    pub(crate) fn revocation_notice(&self) {
        self.revocation_notices.fetch_add(1, Relaxed);
    }

    /// A password check refused at once: every hashing place was taken.
    pub(crate) fn password_busy(&self) {
        self.password_busy.fetch_add(1, Relaxed);
    }

    /// A password check refused without checking the password: as many were
    /// in flight as the lockout still allows.
    pub(crate) fn password_claim_refused(&self) {
        self.password_claim_refused.fetch_add(1, Relaxed);
    }

    /// The dummy hash spent on a login that checks no user's password (an
    /// unknown ID, a closed password), so that it costs what a check costs.
    pub(crate) fn password_dummy_hash(&self) {
        self.password_dummy.fetch_add(1, Relaxed);
    }

    pub(crate) fn login_throttled(&self) {
        self.logins_throttled.fetch_add(1, Relaxed);
    }

    /// A login brought a device cookie: valid for its login ID (`ok`), or
    /// not (forged, expired, another user's), which earns nothing.
    pub fn device_cookie(&self, ok: bool) {
        self.device_cookies[usize::from(!ok)].fetch_add(1, Relaxed);
    }

    pub(crate) fn issued(&self, renewal: bool) {
        if renewal {
            self.issued_renew.fetch_add(1, Relaxed);
        } else {
            self.issued_enroll.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn issuance_refused(&self) {
        self.issuance_refused.fetch_add(1, Relaxed);
    }

    pub(crate) fn revocation_in_force(&self) {
        self.revocations.fetch_add(1, Relaxed);
    }

    pub(crate) fn ocsp_answer(&self, status: Option<&CertStatus>) {
        let i = match status {
            Some(CertStatus::Good) => 0,
            Some(CertStatus::Revoked { .. }) => 1,
            Some(CertStatus::Unknown) => 2,
            None => 3,
        };
        self.ocsp[i].fetch_add(1, Relaxed);
    }

    pub(crate) fn ocsp_cache_hit(&self) {
        self.ocsp_cache_hits.fetch_add(1, Relaxed);
    }

    /// A client certificate whose chain validation was taken from the
    /// certificate listener's cache (revocation and expiry still checked).
    pub fn chain_cache_hit(&self) {
        self.chain_cache_hits.fetch_add(1, Relaxed);
    }

    /// CRL generations published (one partition's CRL and delta each).
    pub(crate) fn crl_generations(&self) -> u64 {
        self.crl_generations.load(Relaxed)
    }

    pub(crate) fn crl_published(&self, took: Duration) {
        self.crl_generations.fetch_add(1, Relaxed);
        self.crl_generation_micros
            .fetch_add(took.as_micros().min(u128::from(u64::MAX)) as u64, Relaxed);
    }

    /// The Prometheus text exposition (format 0.0.4) of every counter, with
    /// the gauges the caller knows (revocation set size, sessions, memory).
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut o = String::with_capacity(8 * 1024);
        let get = |a: &AtomicU64| a.load(Relaxed);

        head(
            &mut o,
            "shomei_tls_handshakes_total",
            "counter",
            "TLS handshakes by listener and result.",
        );
        for l in [Listener::Portal, Listener::Cert, Listener::Operator] {
            let i = l as usize;
            let _ = writeln!(
                o,
                "shomei_tls_handshakes_total{{listener=\"{}\",result=\"ok\"}} {}",
                l.label(),
                get(&self.handshakes_ok[i])
            );
            let _ = writeln!(
                o,
                "shomei_tls_handshakes_total{{listener=\"{}\",result=\"failed\"}} {}",
                l.label(),
                get(&self.handshakes_failed[i])
            );
        }
        head(
            &mut o,
            "shomei_revoked_certificates_refused_total",
            "counter",
            "Client certificates refused in the handshake because they are revoked.",
        );
        let _ = writeln!(
            o,
            "shomei_revoked_certificates_refused_total {}",
            get(&self.revoked_refused)
        );

        head(
            &mut o,
            "shomei_logins_total",
            "counter",
            "Login attempts by method and result.",
        );
        for (i, (method, result)) in [
            ("password", "ok"),
            ("password", "refused"),
            ("certificate", "ok"),
            ("certificate", "refused"),
        ]
        .iter()
        .enumerate()
        {
            let _ = writeln!(
                o,
                "shomei_logins_total{{method=\"{method}\",result=\"{result}\"}} {}",
                get(&self.logins[i])
            );
        }
        head(
            &mut o,
            "shomei_address_throttled_total",
            "counter",
            "Login and enrollment attempts refused because their address failed too often lately.",
        );
        let _ = writeln!(
            o,
            "shomei_address_throttled_total {}",
            get(&self.logins_throttled)
        );
        head(
            &mut o,
            "shomei_device_cookies_total",
            "counter",
            "Device cookies brought with a login: accepted (valid for the login ID typed: a reserved hashing place, no address count) or refused (forged, expired or another user's: nothing earned).",
        );
        for (i, r) in ["accepted", "refused"].iter().enumerate() {
            let _ = writeln!(
                o,
                "shomei_device_cookies_total{{result=\"{r}\"}} {}",
                get(&self.device_cookies[i])
            );
        }

        head(
            &mut o,
            "shomei_certificates_issued_total",
            "counter",
            "Certificates issued, by EST operation.",
        );
        let _ = writeln!(
            o,
            "shomei_certificates_issued_total{{operation=\"simpleenroll\"}} {}",
            get(&self.issued_enroll)
        );
        let _ = writeln!(
            o,
            "shomei_certificates_issued_total{{operation=\"simplereenroll\"}} {}",
            get(&self.issued_renew)
        );
        head(
            &mut o,
            "shomei_issuance_refused_total",
            "counter",
            "Issuance requests refused (authentication, state or CSR).",
        );
        let _ = writeln!(
            o,
            "shomei_issuance_refused_total {}",
            get(&self.issuance_refused)
        );

        head(
            &mut o,
            "shomei_revocations_total",
            "counter",
            "Revocations put in force in this server (its own and other processes').",
        );
        let _ = writeln!(o, "shomei_revocations_total {}", get(&self.revocations));
        head(
            &mut o,
            "shomei_revoked_certificates",
            "gauge",
            "Serials in the in-memory revocation set.",
        );
        let _ = writeln!(o, "shomei_revoked_certificates {}", gauges.revoked);
        head(
            &mut o,
            "shomei_ocsp_presigned_responses",
            "gauge",
            "Pre-signed OCSP answers kept, one per certificate in force that was issued or asked about.",
        );
        let _ = writeln!(
            o,
            "shomei_ocsp_presigned_responses {}",
            gauges.ocsp_presigned
        );

        head(
            &mut o,
            "shomei_ocsp_responses_total",
            "counter",
            "OCSP responses by the status of the first certificate asked about.",
        );
        for (i, status) in ["good", "revoked", "unknown", "error"].iter().enumerate() {
            let _ = writeln!(
                o,
                "shomei_ocsp_responses_total{{status=\"{status}\"}} {}",
                get(&self.ocsp[i])
            );
        }
        head(
            &mut o,
            "shomei_ocsp_cache_hits_total",
            "counter",
            "OCSP responses served from the response cache.",
        );
        let _ = writeln!(
            o,
            "shomei_ocsp_cache_hits_total {}",
            get(&self.ocsp_cache_hits)
        );
        head(
            &mut o,
            "shomei_tls_chain_cache_hits_total",
            "counter",
            "Client certificates whose chain validation came from the certificate listener's cache (revocation and validity still checked on every handshake).",
        );
        let _ = writeln!(
            o,
            "shomei_tls_chain_cache_hits_total {}",
            get(&self.chain_cache_hits)
        );

        head(
            &mut o,
            "shomei_crl_generations_total",
            "counter",
            "CRLs (each a full CRL with its delta, of one partition) generated and published.",
        );
        let _ = writeln!(
            o,
            "shomei_crl_generations_total {}",
            get(&self.crl_generations)
        );
        head(
            &mut o,
            "shomei_crl_generation_seconds_total",
            "counter",
            "Time spent signing CRLs, all partitions together.",
        );
        let _ = writeln!(
            o,
            "shomei_crl_generation_seconds_total {}",
            get(&self.crl_generation_micros) as f64 / 1e6
        );
        head(
            &mut o,
            "shomei_crl_partitions",
            "gauge",
            "CRLs published: the partitions, and the undivided CRL while certificates name it.",
        );
        let _ = writeln!(o, "shomei_crl_partitions {}", gauges.crls.len());
        type Figure = fn(&crate::certificates::crl::CrlFigures) -> String;
        let per_partition: [(&str, &str, Figure); 6] = [
            (
                "shomei_crl_number",
                "CRL number of the published full CRL, per partition.",
                |f| f.number.to_string(),
            ),
            (
                "shomei_crl_entries",
                "Entries in the published full CRL, per partition.",
                |f| f.entries.to_string(),
            ),
            (
                "shomei_crl_bytes",
                "Size of the published full CRL in bytes, per partition.",
                |f| f.bytes.to_string(),
            ),
            (
                "shomei_delta_crl_entries",
                "Entries in the published delta CRL, per partition.",
                |f| f.delta_entries.to_string(),
            ),
            (
                "shomei_delta_crl_bytes",
                "Size of the published delta CRL in bytes, per partition.",
                |f| f.delta_bytes.to_string(),
            ),
            (
                "shomei_crl_generation_seconds",
                "How long the last generation of the partition's CRL and delta took.",
                |f| f.generation_seconds.to_string(),
            ),
        ];
        for (name, help, value) in per_partition {
            head(&mut o, name, "gauge", help);
            for f in &gauges.crls {
                let _ = writeln!(
                    o,
                    "{name}{{partition=\"{}\"}} {}",
                    f.scope.label(),
                    value(f)
                );
            }
        }

        head(
            &mut o,
            "shomei_http_request_duration_seconds",
            "histogram",
            "Time to the response head, by listener.",
        );
        for l in Listener::ALL {
            let h = &self.requests[l as usize];
            let mut cumulative = 0;
            for (i, b) in BUCKETS.iter().enumerate() {
                cumulative += get(&h.slots[i]);
                let _ = writeln!(
                    o,
                    "shomei_http_request_duration_seconds_bucket{{listener=\"{}\",le=\"{b}\"}} {cumulative}",
                    l.label()
                );
            }
            cumulative += get(&h.slots[BUCKETS.len()]);
            let _ = writeln!(
                o,
                "shomei_http_request_duration_seconds_bucket{{listener=\"{}\",le=\"+Inf\"}} {cumulative}",
                l.label()
            );
            let _ = writeln!(
                o,
                "shomei_http_request_duration_seconds_sum{{listener=\"{}\"}} {}",
                l.label(),
                get(&h.sum_micros) as f64 / 1e6
            );
            let _ = writeln!(
                o,
                "shomei_http_request_duration_seconds_count{{listener=\"{}\"}} {cumulative}",
                l.label()
            );
        }

        head(
            &mut o,
            "shomei_connections_open",
            "gauge",
            "Connections open now, by listener.",
        );
        for l in Listener::ALL {
            let _ = writeln!(
                o,
                "shomei_connections_open{{listener=\"{}\"}} {}",
                l.label(),
                get(&self.connections_open[l as usize])
            );
        }
        head(
            &mut o,
            "shomei_connections_refused_total",
            "counter",
            "Connections closed before being served: listener or address cap reached, TLS handshake too slow.",
        );
        for l in Listener::ALL {
            for r in ConnRefusal::ALL {
                let _ = writeln!(
                    o,
                    "shomei_connections_refused_total{{listener=\"{}\",reason=\"{}\"}} {}",
                    l.label(),
                    r.label(),
                    get(&self.connections_refused[l as usize][r as usize])
                );
            }
        }
        head(
            &mut o,
            "shomei_accept_errors_total",
            "counter",
            "Failed accepts (such as too many open files); each backs the listener off briefly.",
        );
        for l in Listener::ALL {
            let _ = writeln!(
                o,
                "shomei_accept_errors_total{{listener=\"{}\"}} {}",
                l.label(),
                get(&self.accept_errors[l as usize])
            );
        }
        head(
            &mut o,
            "shomei_password_hashing_workers",
            "gauge",
            "Password-hashing workers (each with its own Argon2 memory).",
        );
        let _ = writeln!(o, "shomei_password_hashing_workers {}", gauges.hashing.0);
        head(
            &mut o,
            "shomei_password_hashing_places",
            "gauge",
            "Places for password checks: workers plus queue.",
        );
        let _ = writeln!(o, "shomei_password_hashing_places {}", gauges.hashing.1);
        head(
            &mut o,
            "shomei_password_hashing_places_in_use",
            "gauge",
            "Password checks running or queued now.",
        );
        let _ = writeln!(
            o,
            "shomei_password_hashing_places_in_use {}",
            gauges.hashing.2
        );
        head(
            &mut o,
            "shomei_password_hashing_reserved_places",
            "gauge",
            "More places, only for logins with a valid device cookie (returning customers).",
        );
        let _ = writeln!(
            o,
            "shomei_password_hashing_reserved_places {}",
            gauges.hashing_reserved.0
        );
        head(
            &mut o,
            "shomei_password_hashing_reserved_places_in_use",
            "gauge",
            "Reserved places taken now.",
        );
        let _ = writeln!(
            o,
            "shomei_password_hashing_reserved_places_in_use {}",
            gauges.hashing_reserved.1
        );
        head(
            &mut o,
            "shomei_password_hashes_total",
            "counter",
            "Argon2 computations made (password checks, unknown-ID dummies, new hashes).",
        );
        let _ = writeln!(o, "shomei_password_hashes_total {}", gauges.hashing.3);
        head(
            &mut o,
            "shomei_password_dummy_hashes_total",
            "counter",
            "Of those, logins that checked no user's password (unknown ID, locked or stopped password, too many checks in flight) spending the dummy hash so that they cost what a check costs.",
        );
        let _ = writeln!(
            o,
            "shomei_password_dummy_hashes_total {}",
            get(&self.password_dummy)
        );
        head(
            &mut o,
            "shomei_revocation_notices_total",
            "counter",
            "Revocation notices (PostgreSQL LISTEN/NOTIFY) that woke the revocation watch.",
        );
        let _ = writeln!(
            o,
            "shomei_revocation_notices_total {}",
            get(&self.revocation_notices)
        );
        head(
            &mut o,
            "shomei_password_checks_busy_total",
            "counter",
            "Password checks refused at once (503) because every hashing place was taken.",
        );
        let _ = writeln!(
            o,
            "shomei_password_checks_busy_total {}",
            get(&self.password_busy)
        );
        head(
            &mut o,
            "shomei_password_checks_refused_at_once_total",
            "counter",
            "Password checks refused without checking the password: as many were in flight for that user as the lockout still allows.",
        );
        let _ = writeln!(
            o,
            "shomei_password_checks_refused_at_once_total {}",
            get(&self.password_claim_refused)
        );

        head(
            &mut o,
            "shomei_sessions",
            "gauge",
            "Open portal sessions (absent while the database does not answer).",
        );
        if let Some(n) = gauges.sessions {
            let _ = writeln!(o, "shomei_sessions {n}");
        }
        if let Some(rss) = gauges.resident_bytes {
            head(
                &mut o,
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
            );
            let _ = writeln!(o, "process_resident_memory_bytes {rss}");
        }
        head(
            &mut o,
            "shomei_issuing_ca_not_after_seconds",
            "gauge",
            "When the issuing CA certificate expires (Unix time); certificates never outlive it.",
        );
        let _ = writeln!(
            o,
            "shomei_issuing_ca_not_after_seconds {}",
            gauges.issuing_ca_not_after
        );
        head(
            &mut o,
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since the Unix epoch in seconds.",
        );
        let _ = writeln!(o, "process_start_time_seconds {}", gauges.started_unix);
        o
    }
}

/// Values read at render time rather than counted.
pub struct Gauges {
    /// Password hashing: workers, places, places in use, hashes computed.
    pub hashing: (usize, usize, usize, u64),
    /// Reserved places (returning customers'): how many, how many taken.
    pub hashing_reserved: (usize, usize),
    pub revoked: usize,
    /// Pre-signed OCSP answers kept.
    pub ocsp_presigned: usize,
    /// `None` when the database did not answer in time: the sample is left
    /// out rather than guessed.
    pub sessions: Option<usize>,
    pub resident_bytes: Option<u64>,
    pub started_unix: i64,
    pub issuing_ca_not_after: i64,
    /// The published CRLs, per partition.
    pub crls: Vec<crate::certificates::crl::CrlFigures>,
}

fn head(o: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(o, "# HELP {name} {help}");
    let _ = writeln!(o, "# TYPE {name} {kind}");
}

/// This process's resident memory (Linux: /proc/self/statm), if known.
pub fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauges() -> Gauges {
        Gauges {
            hashing: (2, 34, 1, 5),
            hashing_reserved: (8, 0),
            revoked: 7,
            ocsp_presigned: 3,
            sessions: Some(2),
            resident_bytes: Some(4096),
            started_unix: 1_700_000_000,
            issuing_ca_not_after: 2_000_000_000,
            crls: vec![
                crate::certificates::crl::CrlFigures {
                    scope: shomei_core::CrlScope::Partition(3),
                    number: 42,
                    entries: 1000,
                    bytes: 49_500,
                    delta_entries: 1,
                    delta_bytes: 300,
                    generation_seconds: 0.002,
                },
                crate::certificates::crl::CrlFigures {
                    scope: shomei_core::CrlScope::Undivided,
                    number: 41,
                    entries: 990,
                    bytes: 49_000,
                    delta_entries: 0,
                    delta_bytes: 250,
                    generation_seconds: 0.002,
                },
            ],
        }
    }

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let m = Metrics::default();
        m.handshake(Listener::Cert, true);
        m.handshake(Listener::Cert, false);
        m.revoked_certificate_refused();
        m.chain_cache_hit();
        m.login(LoginMethod::Certificate, false);
        m.issued(true);
        m.ocsp_answer(Some(&CertStatus::Good));
        m.ocsp_answer(None);
        m.request(Listener::Portal, Duration::from_micros(300));
        m.request(Listener::Portal, Duration::from_millis(3));
        m.request(Listener::Portal, Duration::from_secs(9));
        m.crl_published(Duration::from_millis(5));
        let text = m.render(&gauges());
        for line in [
            "shomei_tls_handshakes_total{listener=\"cert\",result=\"ok\"} 1",
            "shomei_tls_handshakes_total{listener=\"cert\",result=\"failed\"} 1",
            "shomei_revoked_certificates_refused_total 1",
            "shomei_tls_chain_cache_hits_total 1",
            "shomei_logins_total{method=\"certificate\",result=\"refused\"} 1",
            "shomei_certificates_issued_total{operation=\"simplereenroll\"} 1",
            "shomei_ocsp_responses_total{status=\"good\"} 1",
            "shomei_ocsp_responses_total{status=\"error\"} 1",
            "shomei_http_request_duration_seconds_bucket{listener=\"portal\",le=\"0.0005\"} 1",
            "shomei_http_request_duration_seconds_bucket{listener=\"portal\",le=\"0.005\"} 2",
            "shomei_http_request_duration_seconds_bucket{listener=\"portal\",le=\"2.5\"} 2",
            "shomei_http_request_duration_seconds_bucket{listener=\"portal\",le=\"+Inf\"} 3",
            "shomei_http_request_duration_seconds_count{listener=\"portal\"} 3",
            "shomei_crl_number{partition=\"3\"} 42",
            "shomei_crl_bytes{partition=\"undivided\"} 49000",
            "shomei_crl_partitions 2",
            "shomei_crl_generations_total 1",
            "shomei_revoked_certificates 7",
            "shomei_ocsp_presigned_responses 3",
            "shomei_sessions 2",
            "shomei_issuing_ca_not_after_seconds 2000000000",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "missing {line:?} in\n{text}"
            );
        }
        // Every sample line belongs to a declared metric.
        for l in text.lines().filter(|l| !l.starts_with('#')) {
            let name = l.split(['{', ' ']).next().unwrap();
            let base = name
                .trim_end_matches("_bucket")
                .trim_end_matches("_sum")
                .trim_end_matches("_count");
            assert!(
                text.contains(&format!("# TYPE {name} "))
                    || text.contains(&format!("# TYPE {base} ")),
                "{name} has no TYPE line"
            );
        }
    }
}
