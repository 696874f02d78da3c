//! Counters for operators, served as Prometheus text on the metrics
//! listener: TLS handshakes, logins, issuances, revocations, OCSP, CRLs and
//! request latency per listener. Plain atomics: recording one costs a few
//! nanoseconds and never takes a lock.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use shomei_pki::ocsp::CertStatus;

/// How many listeners there are.
const LISTENERS: usize = 5;

/// The server's listeners, as metric labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The portal (login and password method).
    Portal,
    /// The certificate-method listener (client certificates asked for).
    Cert,
    /// The CRL, OCSP and CA certificates, over plain HTTP.
    Pki,
    /// This /metrics listener.
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

    /// The listener's `listener` label value.
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

/// The server's counters and histograms, rendered by `/metrics`.
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
    pki_quick_answers: AtomicU64,
    chain_cache_hits: AtomicU64,
    crl_generations: AtomicU64,
    crl_generation_micros: AtomicU64,
}

impl Metrics {
    /// A TLS handshake finished on `l`, successfully or not.
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

    /// A connection refused on `l` before TLS, and why.
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

    /// A request the PKI listener answered in its accept loop, without an
    /// HTTP connection of its own.
    pub fn pki_quick_answer(&self) {
        self.pki_quick_answers.fetch_add(1, Relaxed);
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
    /// the gauges the caller knows (revocation set size, sessions, memory),
    /// encoded by prometheus-client from the families read here.
    /// The Prometheus text exposition (format 0.0.4) of every counter, with
    /// the gauges the caller knows (revocation set size, sessions, memory),
    /// encoded by prometheus-client from the families read here.
    pub fn render(&self, gauges: &Gauges) -> String {
        let mut families = self.access();
        families.extend(self.certificates(gauges));
        families.extend(self.crls(gauges));
        families.extend(self.connections());
        families.extend(self.passwords(gauges));
        families.extend(process(gauges));
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Exposition(families)));
        let mut text = String::with_capacity(8 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &registry);
        text
    }

    /// The handshakes, logins and what refused them.
    fn access(&self) -> Vec<Family> {
        let handshakes = [Listener::Portal, Listener::Cert, Listener::Operator]
            .iter()
            .flat_map(|l| {
                let i = *l as usize;
                [
                    ("ok", &self.handshakes_ok[i]),
                    ("failed", &self.handshakes_failed[i]),
                ]
                .map(|(result, n)| {
                    Sample::of(
                        [("listener", l.label().into()), ("result", result.into())],
                        get(n),
                    )
                })
            })
            .collect();
        let logins = [
            ("password", "ok"),
            ("password", "refused"),
            ("certificate", "ok"),
            ("certificate", "refused"),
        ]
        .iter()
        .zip(&self.logins)
        .map(|((method, result), n)| {
            Sample::of(
                [("method", (*method).into()), ("result", (*result).into())],
                get(n),
            )
        })
        .collect();
        vec![
            Family::counter(
                "shomei_tls_handshakes",
                "TLS handshakes by listener and result.",
                handshakes,
            ),
            Family::counter(
                "shomei_revoked_certificates_refused",
                "Client certificates refused in the handshake because they are revoked.",
                Sample::one(get(&self.revoked_refused)),
            ),
            Family::counter(
                "shomei_logins",
                "Login attempts by method and result.",
                logins,
            ),
            Family::counter(
                "shomei_address_throttled",
                "Login and enrollment attempts refused because their address failed too often lately.",
                Sample::one(get(&self.logins_throttled)),
            ),
            Family::counter(
                "shomei_device_cookies",
                "Device cookies brought with a login: accepted (valid for the login ID typed: a reserved hashing place, no address count) or refused (forged, expired or another user's: nothing earned).",
                ["accepted", "refused"]
                    .iter()
                    .zip(&self.device_cookies)
                    .map(|(r, n)| Sample::of([("result", (*r).into())], get(n)))
                    .collect(),
            ),
        ]
    }

    /// Issuance, revocation and OCSP.
    fn certificates(&self, gauges: &Gauges) -> Vec<Family> {
        vec![
            Family::counter(
                "shomei_certificates_issued",
                "Certificates issued, by EST operation.",
                vec![
                    Sample::of(
                        [("operation", "simpleenroll".into())],
                        get(&self.issued_enroll),
                    ),
                    Sample::of(
                        [("operation", "simplereenroll".into())],
                        get(&self.issued_renew),
                    ),
                ],
            ),
            Family::counter(
                "shomei_issuance_refused",
                "Issuance requests refused (authentication, state or CSR).",
                Sample::one(get(&self.issuance_refused)),
            ),
            Family::counter(
                "shomei_revocations",
                "Revocations put in force in this server (its own and other processes').",
                Sample::one(get(&self.revocations)),
            ),
            Family::gauge(
                "shomei_revoked_certificates",
                "Serials in the in-memory revocation set.",
                Sample::one(Value::U64(gauges.revoked as u64)),
            ),
            Family::gauge(
                "shomei_ocsp_presigned_responses",
                "Pre-signed OCSP answers kept, one per certificate in force that was issued or asked about.",
                Sample::one(Value::U64(gauges.ocsp_presigned as u64)),
            ),
            Family::counter(
                "shomei_ocsp_presigned_refused",
                "Pre-signed OCSP answers not kept because ocsp_presigned_max were kept already (those certificates' answers are signed for each request).",
                Sample::one(Value::U64(gauges.ocsp_presigned_refused)),
            ),
            Family::counter(
                "shomei_ocsp_responses",
                "OCSP responses by the status of the first certificate asked about.",
                ["good", "revoked", "unknown", "error"]
                    .iter()
                    .zip(&self.ocsp)
                    .map(|(status, n)| Sample::of([("status", (*status).into())], get(n)))
                    .collect(),
            ),
            Family::counter(
                "shomei_ocsp_cache_hits",
                "OCSP responses served from the response cache.",
                Sample::one(get(&self.ocsp_cache_hits)),
            ),
            Family::counter(
                "shomei_pki_quick_answers",
                "Requests the PKI listener answered in its accept loop (a whole OCSP POST in the connection's first read, its answer in memory, the connection to close after it).",
                Sample::one(get(&self.pki_quick_answers)),
            ),
            Family::counter(
                "shomei_tls_chain_cache_hits",
                "Client certificates whose chain validation came from the certificate listener's cache (revocation and validity still checked on every handshake).",
                Sample::one(get(&self.chain_cache_hits)),
            ),
        ]
    }

    /// The CRLs generated and published, per partition.
    fn crls(&self, gauges: &Gauges) -> Vec<Family> {
        vec![
            Family::counter(
                "shomei_crl_generations",
                "CRLs (each a full CRL with its delta, of one partition) generated and published.",
                Sample::one(get(&self.crl_generations)),
            ),
            Family::counter(
                "shomei_crl_generation_seconds",
                "Time spent signing CRLs, all partitions together.",
                Sample::one(Value::F64(
                    self.crl_generation_micros.load(Relaxed) as f64 / 1e6,
                )),
            ),
            Family::gauge(
                "shomei_crl_partitions",
                "CRLs published: the partitions, and the undivided CRL while certificates name it.",
                Sample::one(Value::U64(gauges.crls.len() as u64)),
            ),
            Family::gauge(
                "shomei_crl_number",
                "CRL number of the published full CRL, per partition.",
                per_partition(gauges, |f| Value::U64(f.number)),
            ),
            Family::gauge(
                "shomei_crl_entries",
                "Entries in the published full CRL, per partition.",
                per_partition(gauges, |f| Value::U64(f.entries as u64)),
            ),
            Family::gauge(
                "shomei_crl_bytes",
                "Size of the published full CRL in bytes, per partition.",
                per_partition(gauges, |f| Value::U64(f.bytes as u64)),
            ),
            Family::gauge(
                "shomei_delta_crl_entries",
                "Entries in the published delta CRL, per partition.",
                per_partition(gauges, |f| Value::U64(f.delta_entries as u64)),
            ),
            Family::gauge(
                "shomei_delta_crl_bytes",
                "Size of the published delta CRL in bytes, per partition.",
                per_partition(gauges, |f| Value::U64(f.delta_bytes as u64)),
            ),
            Family::gauge(
                "shomei_crl_generation_seconds",
                "How long the last generation of the partition's CRL and delta took.",
                per_partition(gauges, |f| Value::F64(f.generation_seconds)),
            ),
        ]
    }

    /// Requests and connections, by listener.
    fn connections(&self) -> Vec<Family> {
        let requests = Listener::ALL
            .iter()
            .map(|l| {
                let h = &self.requests[*l as usize];
                let slots: Vec<u64> = h.slots.iter().map(|s| s.load(Relaxed)).collect();
                Sample::of(
                    [("listener", l.label().into())],
                    Value::Histogram {
                        sum: h.sum_micros.load(Relaxed) as f64 / 1e6,
                        count: slots.iter().sum(),
                        buckets: BUCKETS.iter().copied().zip(slots).collect(),
                    },
                )
            })
            .collect();
        let refused = Listener::ALL
            .iter()
            .flat_map(|l| {
                ConnRefusal::ALL.map(|r| {
                    Sample::of(
                        [("listener", l.label().into()), ("reason", r.label().into())],
                        get(&self.connections_refused[*l as usize][r as usize]),
                    )
                })
            })
            .collect();
        vec![
            Family {
                name: "shomei_http_request_duration_seconds",
                help: "Time to the response head, by listener.",
                kind: MetricType::Histogram,
                samples: requests,
            },
            Family::gauge(
                "shomei_connections_open",
                "Connections open now, by listener.",
                by_listener(|i| get(&self.connections_open[i])),
            ),
            Family::counter(
                "shomei_connections_refused",
                "Connections closed before being served: listener or address cap reached, TLS handshake too slow.",
                refused,
            ),
            Family::counter(
                "shomei_accept_errors",
                "Failed accepts (such as too many open files); each backs the listener off briefly.",
                by_listener(|i| get(&self.accept_errors[i])),
            ),
        ]
    }

    /// Password hashing and the checks it refused.
    fn passwords(&self, gauges: &Gauges) -> Vec<Family> {
        vec![
            Family::gauge(
                "shomei_password_hashing_workers",
                "Password-hashing workers (each with its own Argon2 memory).",
                Sample::one(Value::U64(gauges.hashing.0 as u64)),
            ),
            Family::gauge(
                "shomei_password_hashing_places",
                "Places for password checks: workers plus queue.",
                Sample::one(Value::U64(gauges.hashing.1 as u64)),
            ),
            Family::gauge(
                "shomei_password_hashing_places_in_use",
                "Password checks running or queued now.",
                Sample::one(Value::U64(gauges.hashing.2 as u64)),
            ),
            Family::gauge(
                "shomei_password_hashing_reserved_places",
                "More places, only for logins with a valid device cookie (returning customers).",
                Sample::one(Value::U64(gauges.hashing_reserved.0 as u64)),
            ),
            Family::gauge(
                "shomei_password_hashing_reserved_places_in_use",
                "Reserved places taken now.",
                Sample::one(Value::U64(gauges.hashing_reserved.1 as u64)),
            ),
            Family::counter(
                "shomei_password_hashes",
                "Argon2 computations made (password checks, unknown-ID dummies, new hashes).",
                Sample::one(Value::U64(gauges.hashing.3)),
            ),
            Family::counter(
                "shomei_password_dummy_hashes",
                "Of those, logins that checked no user's password (unknown ID, locked or stopped password, too many checks in flight) spending the dummy hash so that they cost what a check costs.",
                Sample::one(get(&self.password_dummy)),
            ),
            Family::counter(
                "shomei_revocation_notices",
                "Revocation notices (PostgreSQL LISTEN/NOTIFY) that woke the revocation watch.",
                Sample::one(get(&self.revocation_notices)),
            ),
            Family::counter(
                "shomei_password_checks_busy",
                "Password checks refused at once (503) because every hashing place was taken.",
                Sample::one(get(&self.password_busy)),
            ),
            Family::counter(
                "shomei_password_checks_refused_at_once",
                "Password checks refused without checking the password: as many were in flight for that user as the lockout still allows.",
                Sample::one(get(&self.password_claim_refused)),
            ),
        ]
    }
}

/// The sessions, the process, the issuing CA and the database's writer.
fn process(gauges: &Gauges) -> Vec<Family> {
    // shomei_sessions: without a sample while the database does not answer.
    let mut families = vec![Family::gauge(
        "shomei_sessions",
        "Open portal sessions (absent while the database does not answer).",
        gauges
            .sessions
            .map(|n| Sample::one(Value::U64(n as u64)))
            .unwrap_or_default(),
    )];
    if let Some(rss) = gauges.resident_bytes {
        families.push(Family::gauge(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            Sample::one(Value::U64(rss)),
        ));
    }
    families.extend([
        Family::gauge(
            "shomei_issuing_ca_not_after_seconds",
            "When the issuing CA certificate expires (Unix time); certificates never outlive it.",
            Sample::one(Value::I64(gauges.issuing_ca_not_after)),
        ),
        Family::gauge(
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch in seconds.",
            Sample::one(Value::I64(gauges.started_unix)),
        ),
        Family::gauge(
            "shomei_db_writer_waiting",
            "Write transactions waiting for SQLite's one writer.",
            Sample::one(Value::U64(gauges.writer_waiting as u64)),
        ),
        Family::counter(
            "shomei_db_writer_turns_ahead",
            "Writer turns a returning customer's login took ahead of others waiting.",
            Sample::one(Value::U64(gauges.writer_turns_ahead)),
        ),
        Family::gauge(
            "shomei_revocation_set_from_snapshot",
            "1 when this server started from its revocation set snapshot.",
            Sample::one(Value::U64(u64::from(gauges.from_snapshot))),
        ),
    ]);
    families
}

/// A counter's value now.
fn get(a: &AtomicU64) -> Value {
    Value::U64(a.load(Relaxed))
}

/// One sample per listener, of `of(listener index)`.
fn by_listener(of: impl Fn(usize) -> Value) -> Vec<Sample> {
    Listener::ALL
        .iter()
        .map(|l| Sample::of([("listener", l.label().into())], of(*l as usize)))
        .collect()
}

/// One sample per published CRL partition.
fn per_partition(
    gauges: &Gauges,
    of: fn(&crate::certificates::crl::CrlFigures) -> Value,
) -> Vec<Sample> {
    gauges
        .crls
        .iter()
        .map(|f| Sample::of([("partition", f.scope.label().into())], of(f)))
        .collect()
}

/// A sample's value.
#[derive(Debug)]
enum Value {
    U64(u64),
    I64(i64),
    F64(f64),
    /// Per-bucket counts (not cumulative: the encoder sums them), the +Inf
    /// bucket being `count` less their sum.
    Histogram {
        sum: f64,
        count: u64,
        buckets: Vec<(f64, u64)>,
    },
}

/// One sample of a family: its labels and its value.
#[derive(Debug)]
struct Sample {
    labels: Vec<(&'static str, Cow<'static, str>)>,
    value: Value,
}

impl Sample {
    fn of<const N: usize>(labels: [(&'static str, Cow<'static, str>); N], value: Value) -> Self {
        Sample {
            labels: labels.into(),
            value,
        }
    }

    /// The family's one sample, without labels.
    fn one(value: Value) -> Vec<Sample> {
        vec![Sample::of([], value)]
    }
}

/// A metric family as read at render time: its name (a counter's without
/// the `_total` the encoder adds), help, type and samples.
#[derive(Debug)]
struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    samples: Vec<Sample>,
}

impl Family {
    fn counter(name: &'static str, help: &'static str, samples: Vec<Sample>) -> Self {
        Family {
            name,
            help,
            kind: MetricType::Counter,
            samples,
        }
    }

    fn gauge(name: &'static str, help: &'static str, samples: Vec<Sample>) -> Self {
        Family {
            name,
            help,
            kind: MetricType::Gauge,
            samples,
        }
    }
}

/// The families of one render, handed to prometheus-client's encoder (the
/// counters stay plain atomics: recording never goes through the crate).
#[derive(Debug)]
struct Exposition(Vec<Family>);

impl Collector for Exposition {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for f in &self.0 {
            let mut family = encoder.encode_descriptor(f.name, f.help, None, f.kind)?;
            for s in &f.samples {
                let mut m = family.encode_family(&s.labels)?;
                match (&s.value, f.kind) {
                    (Value::U64(v), MetricType::Counter) => {
                        m.encode_counter::<NoLabelSet, _, u64>(v, None)?
                    }
                    (Value::F64(v), MetricType::Counter) => {
                        m.encode_counter::<NoLabelSet, _, f64>(v, None)?
                    }
                    (Value::U64(v), _) => m.encode_gauge(v)?,
                    (Value::I64(v), _) => m.encode_gauge(v)?,
                    (Value::F64(v), _) => m.encode_gauge(v)?,
                    (
                        Value::Histogram {
                            sum,
                            count,
                            buckets,
                        },
                        _,
                    ) => m.encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)?,
                }
            }
        }
        Ok(())
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
    /// Pre-signed answers not kept because the cap was reached.
    pub ocsp_presigned_refused: u64,
    /// `None` when the database did not answer in time: the sample is left
    /// out rather than guessed.
    pub sessions: Option<usize>,
    pub resident_bytes: Option<u64>,
    pub started_unix: i64,
    pub issuing_ca_not_after: i64,
    /// The published CRLs, per partition.
    pub crls: Vec<crate::certificates::crl::CrlFigures>,
    /// Write transactions waiting for SQLite's one writer.
    pub writer_waiting: usize,
    /// Writer turns a returning customer's login took ahead of others.
    pub writer_turns_ahead: u64,
    /// Started from the revocation set snapshot.
    pub from_snapshot: bool,
}

/// This process's resident memory (Linux: /proc/self/statm), if known.
pub(crate) fn resident_bytes() -> Option<u64> {
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
            ocsp_presigned_refused: 4,
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
            writer_waiting: 0,
            writer_turns_ahead: 4,
            from_snapshot: true,
        }
    }

    /// What a Prometheus server sees of the exposition: each sample's name,
    /// its family's type and its label names, and each family's help.
    fn shape(text: &str) -> std::collections::BTreeSet<String> {
        let mut types = std::collections::HashMap::new();
        let mut out = std::collections::BTreeSet::new();
        for l in text.lines() {
            if let Some(rest) = l.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                types.insert(name.to_owned(), kind.to_owned());
            } else if l.starts_with("# HELP ") {
                out.insert(l.to_owned());
            }
        }
        for l in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let name = l.split(['{', ' ']).next().unwrap();
            let family = [
                name,
                name.trim_end_matches("_bucket"),
                name.trim_end_matches("_sum"),
                name.trim_end_matches("_count"),
            ]
            .into_iter()
            .find(|n| types.contains_key(*n))
            .unwrap_or_else(|| panic!("{name} has no TYPE line"));
            let labels: Vec<&str> = match l.split_once('{') {
                Some((_, rest)) => rest
                    .split_once('}')
                    .unwrap()
                    .0
                    .split(',')
                    .map(|kv| kv.split_once('=').unwrap().0)
                    .collect(),
                None => Vec::new(),
            };
            out.insert(format!("{name} {} {{{}}}", types[family], labels.join(",")));
        }
        out
    }

    /// Every metric keeps its name, type, labels and help (the list is the
    /// exposition as it was written by hand, before prometheus-client).
    #[test]
    fn every_metric_keeps_its_name_type_labels_and_help() {
        let text = Metrics::default().render(&gauges());
        let got = shape(&text);
        let want: std::collections::BTreeSet<String> = SHAPE.lines().map(str::to_owned).collect();
        if got != want {
            panic!(
                "missing: {:#?}\nnew: {:#?}\n{}",
                want.difference(&got).collect::<Vec<_>>(),
                got.difference(&want).collect::<Vec<_>>(),
                got.iter().cloned().collect::<Vec<_>>().join("\n")
            );
        }
    }

    const SHAPE: &str = "\
# HELP process_resident_memory_bytes Resident memory size in bytes.
# HELP process_start_time_seconds Start time of the process since the Unix epoch in seconds.
# HELP shomei_accept_errors_total Failed accepts (such as too many open files); each backs the listener off briefly.
# HELP shomei_address_throttled_total Login and enrollment attempts refused because their address failed too often lately.
# HELP shomei_certificates_issued_total Certificates issued, by EST operation.
# HELP shomei_connections_open Connections open now, by listener.
# HELP shomei_connections_refused_total Connections closed before being served: listener or address cap reached, TLS handshake too slow.
# HELP shomei_crl_bytes Size of the published full CRL in bytes, per partition.
# HELP shomei_crl_entries Entries in the published full CRL, per partition.
# HELP shomei_crl_generation_seconds How long the last generation of the partition's CRL and delta took.
# HELP shomei_crl_generation_seconds_total Time spent signing CRLs, all partitions together.
# HELP shomei_crl_generations_total CRLs (each a full CRL with its delta, of one partition) generated and published.
# HELP shomei_crl_number CRL number of the published full CRL, per partition.
# HELP shomei_crl_partitions CRLs published: the partitions, and the undivided CRL while certificates name it.
# HELP shomei_delta_crl_bytes Size of the published delta CRL in bytes, per partition.
# HELP shomei_delta_crl_entries Entries in the published delta CRL, per partition.
# HELP shomei_device_cookies_total Device cookies brought with a login: accepted (valid for the login ID typed: a reserved hashing place, no address count) or refused (forged, expired or another user's: nothing earned).
# HELP shomei_http_request_duration_seconds Time to the response head, by listener.
# HELP shomei_issuance_refused_total Issuance requests refused (authentication, state or CSR).
# HELP shomei_issuing_ca_not_after_seconds When the issuing CA certificate expires (Unix time); certificates never outlive it.
# HELP shomei_logins_total Login attempts by method and result.
# HELP shomei_ocsp_cache_hits_total OCSP responses served from the response cache.
# HELP shomei_ocsp_presigned_refused_total Pre-signed OCSP answers not kept because ocsp_presigned_max were kept already (those certificates' answers are signed for each request).
# HELP shomei_ocsp_presigned_responses Pre-signed OCSP answers kept, one per certificate in force that was issued or asked about.
# HELP shomei_ocsp_responses_total OCSP responses by the status of the first certificate asked about.
# HELP shomei_pki_quick_answers_total Requests the PKI listener answered in its accept loop (a whole OCSP POST in the connection's first read, its answer in memory, the connection to close after it).
# HELP shomei_password_checks_busy_total Password checks refused at once (503) because every hashing place was taken.
# HELP shomei_password_checks_refused_at_once_total Password checks refused without checking the password: as many were in flight for that user as the lockout still allows.
# HELP shomei_password_dummy_hashes_total Of those, logins that checked no user's password (unknown ID, locked or stopped password, too many checks in flight) spending the dummy hash so that they cost what a check costs.
# HELP shomei_password_hashes_total Argon2 computations made (password checks, unknown-ID dummies, new hashes).
# HELP shomei_password_hashing_places Places for password checks: workers plus queue.
# HELP shomei_password_hashing_places_in_use Password checks running or queued now.
# HELP shomei_password_hashing_reserved_places More places, only for logins with a valid device cookie (returning customers).
# HELP shomei_password_hashing_reserved_places_in_use Reserved places taken now.
# HELP shomei_password_hashing_workers Password-hashing workers (each with its own Argon2 memory).
# HELP shomei_revocation_notices_total Revocation notices (PostgreSQL LISTEN/NOTIFY) that woke the revocation watch.
# HELP shomei_revocations_total Revocations put in force in this server (its own and other processes').
# HELP shomei_revoked_certificates Serials in the in-memory revocation set.
# HELP shomei_revoked_certificates_refused_total Client certificates refused in the handshake because they are revoked.
# HELP shomei_sessions Open portal sessions (absent while the database does not answer).
# HELP shomei_tls_chain_cache_hits_total Client certificates whose chain validation came from the certificate listener's cache (revocation and validity still checked on every handshake).
# HELP shomei_tls_handshakes_total TLS handshakes by listener and result.
process_resident_memory_bytes gauge {}
process_start_time_seconds gauge {}
shomei_accept_errors_total counter {listener}
shomei_address_throttled_total counter {}
shomei_certificates_issued_total counter {operation}
shomei_connections_open gauge {listener}
shomei_connections_refused_total counter {listener,reason}
shomei_crl_bytes gauge {partition}
shomei_crl_entries gauge {partition}
shomei_crl_generation_seconds gauge {partition}
shomei_crl_generation_seconds_total counter {}
shomei_crl_generations_total counter {}
shomei_crl_number gauge {partition}
shomei_crl_partitions gauge {}
shomei_delta_crl_bytes gauge {partition}
shomei_delta_crl_entries gauge {partition}
shomei_device_cookies_total counter {result}
shomei_http_request_duration_seconds_bucket histogram {listener,le}
shomei_http_request_duration_seconds_count histogram {listener}
shomei_http_request_duration_seconds_sum histogram {listener}
shomei_issuance_refused_total counter {}
shomei_issuing_ca_not_after_seconds gauge {}
shomei_logins_total counter {method,result}
shomei_ocsp_cache_hits_total counter {}
shomei_ocsp_presigned_refused_total counter {}
shomei_ocsp_presigned_responses gauge {}
shomei_ocsp_responses_total counter {status}
shomei_pki_quick_answers_total counter {}
shomei_password_checks_busy_total counter {}
shomei_password_checks_refused_at_once_total counter {}
shomei_password_dummy_hashes_total counter {}
shomei_password_hashes_total counter {}
shomei_password_hashing_places gauge {}
shomei_password_hashing_places_in_use gauge {}
shomei_password_hashing_reserved_places gauge {}
shomei_password_hashing_reserved_places_in_use gauge {}
shomei_password_hashing_workers gauge {}
shomei_revocation_notices_total counter {}
shomei_revocations_total counter {}
shomei_revoked_certificates gauge {}
shomei_revoked_certificates_refused_total counter {}
shomei_sessions gauge {}
shomei_tls_chain_cache_hits_total counter {}
shomei_tls_handshakes_total counter {listener,result}
# HELP shomei_db_writer_waiting Write transactions waiting for SQLite's one writer.
# HELP shomei_db_writer_turns_ahead_total Writer turns a returning customer's login took ahead of others waiting.
# HELP shomei_revocation_set_from_snapshot 1 when this server started from its revocation set snapshot.
shomei_db_writer_waiting gauge {}
shomei_db_writer_turns_ahead_total counter {}
shomei_revocation_set_from_snapshot gauge {}";

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
            "shomei_ocsp_presigned_refused_total 4",
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
