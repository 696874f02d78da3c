//! Shomei's web layer: the portal's screens, sessions, CSRF, the TLS
//! listener, and the PKI endpoints (CRL).
//!
//! A handler reads the request, calls one use case, renders one template.
//! Decisions are made in `shomei-service` and `shomei-core`, never here.

mod archive;
mod certauth;
mod company;
mod console;
mod deb;
mod est;
mod guard;
mod history;
mod issue_page;
mod limits;
mod pages;
mod pki;
mod quick;
mod screens;
mod server;
mod session;
mod sockopt;
mod stop;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use shomei_service::Shomei;

pub use est::ClientCert;
pub use limits::raise_open_files_limit;
pub use pages::ClientAddr;
pub use server::{
    Listeners, RunningServer, ServerOptions, StartError, bind, start, start_all, start_on,
    start_with,
};
pub use session::{DEVICE_COOKIE, FORM_COOKIE, SESSION_COOKIE};

impl AppState {
    /// How long a login form stays valid.
    pub(crate) fn form_lifetime(&self) -> time::Duration {
        time::Duration::minutes(self.svc.settings().login_form_minutes)
    }
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    /// The service every handler asks: the only way to the use cases.
    pub svc: Arc<Shomei>,
    /// Signs the login forms' tokens (anonymous visitors hold no session).
    pub(crate) form: Arc<session::LoginForm>,
    /// Signs returning customers' device cookies.
    pub(crate) devices: Arc<session::DeviceCookies>,
    /// Base URL of the certificate listener, when it runs.
    pub cert_base: Option<String>,
}

/// The revocation endpoints alone, for the plain-HTTP PKI listener: CRLs,
/// OCSP and the CA certificates (RFC 5280 §4.2.1.13 and RFC 6960 expect
/// them over HTTP, so that checking a certificate never needs TLS first).
/// No sessions, no cookies, nothing that changes anything.
pub fn pki_router(state: AppState) -> Router {
    pki_routes().fallback(pki::not_found).with_state(state)
}

/// The metrics listener: `GET /metrics` in Prometheus text format, nothing
/// else. Bind it to an address only the monitoring can reach (the default is
/// loopback).
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(pki::not_found)
        .with_state(state)
}

/// `GET /healthz`: the process answers (for a load balancer's liveness check).
async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: 200 when the database is reachable and the revocation
/// view is current, else 503 with the reason — take this node out of the
/// pool until it recovers (it does by itself).
async fn readyz(
    axum::extract::State(st): axum::extract::State<AppState>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    match st.svc.readiness().await {
        Ok(()) => "ready\n".into_response(),
        Err(why) => (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

async fn metrics_text(
    axum::extract::State(st): axum::extract::State<AppState>,
) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        st.svc.metrics_text(
            // The one figure read from the database: a scrape during an
            // outage answers at once, without it.
            tokio::time::timeout(
                std::time::Duration::from_millis(500),
                st.svc.sessions().count(),
            )
            .await
            .ok()
            .flatten(),
        ),
    )
}

/// CRLs, OCSP and the CA certificates: on the PKI listener and the portal.
fn pki_routes() -> Router<AppState> {
    Router::new()
        .route("/pki/ocsp", post(pki::ocsp_post))
        .route("/pki/ocsp/{*request}", get(pki::ocsp_get))
        .route("/pki/delta-crl", get(pki::delta_crl_der))
        .route("/pki/delta-crl.pem", get(pki::delta_crl_pem))
        .route("/pki/crl", get(pki::crl_der))
        .route("/pki/crl.pem", get(pki::crl_pem))
        .route("/pki/crl/{partition}", get(pki::partition_crl))
        .route("/pki/delta-crl/{partition}", get(pki::partition_delta_crl))
        .route("/pki/crls.pem", get(pki::crl_bundle))
        .route("/pki/root-ca.crt", get(pki::root_cert))
        .route("/pki/issuing-ca.crt", get(pki::issuing_cert))
}

/// The portal's routes. Every POST passes the CSRF guard; every page gets the
/// security headers.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(pages::root))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/login", get(pages::login_page).post(pages::login_submit))
        .route("/logout", post(pages::logout))
        .route("/cert-issue", get(issue_page::cert_issue))
        .route("/cert-issue/app", get(issue_page::download))
        .route("/cert-issue/app.deb", get(issue_page::download_deb))
        .route("/cert-issue/app.exe", get(issue_page::download_exe))
        .route("/cert-issue/app.msi", get(issue_page::download_msi))
        .route("/top", get(pages::top))
        .route("/menu/{item}", get(pages::menu_item))
        .route("/bssk001", get(screens::bssk001))
        .route("/bssk001/{item}", get(screens::bssk001_item))
        .route("/bssk002", get(company::bssk002))
        .route(
            "/bssk003",
            get(company::bssk003).post(company::bssk003_submit),
        )
        .route("/bssk011", get(history::bssk011))
        .route("/bssk011/csv", get(history::bssk011_csv))
        .route("/brsk001", get(screens::brsk001))
        .route(
            "/brsk002",
            get(screens::brsk002).post(screens::brsk002_submit),
        )
        .route("/brsk005", get(screens::brsk005))
        .route("/brsk011", get(users::brsk011))
        .route("/brsk012", get(users::brsk012).post(users::brsk012_submit))
        .route("/brsk014", get(users::brsk014).post(users::brsk014_submit))
        .route("/brsk015", get(users::brsk015).post(users::brsk015_submit))
        .route("/brsk021", get(stop::brsk021).post(stop::brsk021_submit))
        .route("/brsk022", post(stop::brsk022_submit))
        .route("/brsk001/{item}", get(screens::brsk001_item))
        .route(
            "/brsk018",
            get(screens::brsk018).post(screens::brsk018_submit),
        )
        .route(
            "/brsk019",
            get(screens::brsk019).post(screens::brsk019_submit),
        )
        .route("/brsk020", get(screens::brsk020))
        .route("/static/shomei.css", get(pages::stylesheet))
        .route(
            "/cert-login",
            get(pages::cert_login).post(pages::cert_login_submit),
        )
        .route("/.well-known/est/cacerts", get(est::cacerts))
        .route("/.well-known/est/csrattrs", get(est::csrattrs))
        .route("/.well-known/est/simpleenroll", post(est::simpleenroll))
        .route("/.well-known/est/simplereenroll", post(est::simplereenroll))
        .route("/pki/cert-status", get(est::cert_status))
        .merge(pki_routes())
        .fallback(pages::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::csrf,
        ))
        .layer(axum::middleware::from_fn(guard::security_headers))
        .with_state(state)
}
