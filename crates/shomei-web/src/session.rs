//! The cookies of the portal and the console: a logged-in session's id in
//! a `__Host-` cookie (Secure, HttpOnly, SameSite=Strict; the session itself
//! is the service's, [`shomei_service::Sessions`]), and the signed cookies
//! that need no server state.
//!
//! Anonymous visitors hold no state: the login forms carry a signed token
//! instead ([`LoginForm`]), so no flood of visitors can push a logged-in
//! session out.

use shomei_core::LoginId;
use time::OffsetDateTime;

/// The cookie that carries a logged-in session's id (`__Host-`: Secure,
/// path /, no Domain, so no other host can set or read it).
pub const SESSION_COOKIE: &str = "__Host-shomei";

/// The cookie that carries a login form's signed token.
pub const FORM_COOKIE: &str = "__Host-shomei-form";

/// The cookie a browser gets at a successful login: it makes the next login
/// of the same login ID from that browser a returning customer's.
pub const DEVICE_COOKIE: &str = "__Host-shomei-device";

/// A fresh random token (32 bytes, in hex).
pub(crate) fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::Rng::fill(&mut rand::rng(), &mut b[..]);
    hex::encode(b)
}

/// Compares secrets without an early exit.
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The `Set-Cookie` value for a session id.
pub(crate) fn cookie(id: &str) -> String {
    format!("{SESSION_COOKIE}={id}; Path=/; Secure; HttpOnly; SameSite=Strict")
}

/// The `Set-Cookie` value that removes the session cookie.
pub(crate) fn clear_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

fn cookie_value(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// The session id in a request's `Cookie` headers, if any.
pub(crate) fn session_id(headers: &axum::http::HeaderMap) -> Option<String> {
    cookie_value(headers, SESSION_COOKIE)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// What a signed cookie is for. Its MAC covers this and what the cookie is
/// bound to, so a login form's cookie never passes for a console session
/// nor one operator's session for another's certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signed {
    /// The portal's login forms (bound to nothing: no session yet).
    LoginForm,
    /// The operator console's login form (bound to the operator's
    /// certificate; a cookie of its own beside the portal's).
    ConsoleLogin,
    /// An operator console session (bound to the operator's certificate).
    Console,
    /// A returning customer's device cookie (bound to the login ID).
    Device,
}

impl Signed {
    fn label(self) -> &'static str {
        match self {
            Signed::LoginForm => "form",
            Signed::ConsoleLogin => "console-form",
            Signed::Console => "console",
            Signed::Device => "device",
        }
    }

    fn cookie_name(self) -> &'static str {
        match self {
            Signed::LoginForm => FORM_COOKIE,
            Signed::ConsoleLogin => CONSOLE_FORM_COOKIE,
            Signed::Console => CONSOLE_COOKIE,
            Signed::Device => DEVICE_COOKIE,
        }
    }
}

/// The cookie of an operator console session.
pub const CONSOLE_COOKIE: &str = "__Host-shomei-console";

/// The cookie of the operator console's login form.
pub const CONSOLE_FORM_COOKIE: &str = "__Host-shomei-console-form";

/// Signed cookies without server state: the portal's login forms and the
/// operator console's sessions. The browser gets a cookie
/// `issued.nonce.mac` (HMAC-SHA256 under a key every server on the
/// database shares, over what the cookie is for, what it is bound to, and
/// `issued.nonce`) and each form carries a CSRF token derived from the
/// nonce. A POST is accepted when the cookie's MAC holds, it was issued
/// within its lifetime, and the form's token matches it. Reissuing the
/// cookie with the same nonce and a new time keeps its token (the console's
/// idle clock).
pub(crate) struct LoginForm {
    key: aws_lc_rs::hmac::Key,
    lifetime: time::Duration,
}

impl LoginForm {
    pub(crate) fn new(secret: &[u8], lifetime: time::Duration) -> Self {
        Self {
            key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret),
            lifetime,
        }
    }

    fn mac(&self, parts: &[&str]) -> String {
        let mut ctx = aws_lc_rs::hmac::Context::with_key(&self.key);
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                ctx.update(b"|");
            }
            ctx.update(p.as_bytes());
        }
        hex::encode(ctx.sign().as_ref())
    }

    /// A cookie value for `what` bound to `bind`, issued at `now`: with a
    /// fresh nonce, or `nonce` kept (a session's idle clock moved on).
    pub(crate) fn issue_signed(
        &self,
        what: Signed,
        bind: &str,
        nonce: Option<&str>,
        now: OffsetDateTime,
    ) -> String {
        let nonce = nonce.map_or_else(
            || {
                let mut n = [0u8; 16];
                rand::Rng::fill(&mut rand::rng(), &mut n[..]);
                hex::encode(n)
            },
            str::to_owned,
        );
        let body = format!("{}.{nonce}", now.unix_timestamp());
        let mac = self.mac(&[what.label(), bind, &body]);
        format!("{body}.{mac}")
    }

    /// The nonce of the cookie for `what` in `headers`, if it is ours,
    /// bound to `bind` and issued at most `lifetime` before `now`.
    pub(crate) fn signed_nonce(
        &self,
        headers: &axum::http::HeaderMap,
        what: Signed,
        bind: &str,
        lifetime: time::Duration,
        now: OffsetDateTime,
    ) -> Option<String> {
        let v = cookie_value(headers, what.cookie_name())?;
        if v.len() > 200 {
            return None;
        }
        let (body, mac) = v.rsplit_once('.')?;
        if !same_secret(mac, &self.mac(&[what.label(), bind, body])) {
            return None;
        }
        let (issued, nonce) = body.split_once('.')?;
        let age = now.unix_timestamp() - issued.parse::<i64>().ok()?;
        (age >= -60 && age <= lifetime.whole_seconds()).then(|| nonce.to_owned())
    }

    /// The CSRF token forms carry for the cookie with `nonce`.
    pub(crate) fn csrf_token(&self, what: Signed, bind: &str, nonce: &str) -> String {
        self.mac(&["csrf", what.label(), bind, nonce])
    }

    /// Does the POST's token match a valid cookie for `what`? The cookie's
    /// nonce when it does.
    pub(crate) fn accepts_signed(
        &self,
        headers: &axum::http::HeaderMap,
        what: Signed,
        bind: &str,
        lifetime: time::Duration,
        sent: Option<&str>,
        now: OffsetDateTime,
    ) -> Option<String> {
        let nonce = self.signed_nonce(headers, what, bind, lifetime, now)?;
        same_secret(sent?, &self.csrf_token(what, bind, &nonce)).then_some(nonce)
    }

    /// A fresh cookie value for a login form shown at `now` (wall clock).
    pub(crate) fn issue(&self, now: OffsetDateTime) -> String {
        self.issue_signed(Signed::LoginForm, "", None, now)
    }

    /// The nonce of the login form's cookie in `headers` if it is ours and
    /// still valid at `now`.
    pub(crate) fn valid_cookie(
        &self,
        headers: &axum::http::HeaderMap,
        now: OffsetDateTime,
    ) -> Option<String> {
        self.signed_nonce(headers, Signed::LoginForm, "", self.lifetime, now)
    }

    /// The token a login form carries for its cookie's nonce.
    pub(crate) fn token(&self, nonce: &str) -> String {
        self.csrf_token(Signed::LoginForm, "", nonce)
    }

    /// Does the login POST's token match a valid cookie?
    pub(crate) fn accepts(
        &self,
        headers: &axum::http::HeaderMap,
        sent: Option<&str>,
        now: OffsetDateTime,
    ) -> bool {
        self.accepts_signed(headers, Signed::LoginForm, "", self.lifetime, sent, now)
            .is_some()
    }
}

/// The nonce inside a signed cookie's value.
pub(crate) fn nonce_of(value: &str) -> &str {
    value.split('.').nth(1).unwrap_or_default()
}

/// The `Set-Cookie` value of a signed cookie for `what` that lives `lifetime`.
pub(crate) fn signed_cookie(what: Signed, value: &str, lifetime: time::Duration) -> String {
    format!(
        "{}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
        what.cookie_name(),
        lifetime.whole_seconds()
    )
}

/// The `Set-Cookie` value that removes a signed cookie.
pub(crate) fn clear_signed_cookie(what: Signed) -> String {
    format!(
        "{}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0",
        what.cookie_name()
    )
}

/// The `Set-Cookie` value of a login form's cookie (it lives as long as the form).
pub(crate) fn form_cookie(value: &str, lifetime: time::Duration) -> String {
    signed_cookie(Signed::LoginForm, value, lifetime)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, HeaderValue, header::COOKIE};
    use time::macros::datetime;

    const T0: OffsetDateTime = datetime!(2026-01-01 09:00 UTC);

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(COOKIE, HeaderValue::from_str(c).unwrap());
        }
        h
    }

    fn form() -> LoginForm {
        LoginForm::new(b"the servers' shared form key", time::Duration::minutes(30))
    }

    #[test]
    fn same_secret_is_equality_of_the_whole_string() {
        assert!(same_secret("abc", "abc"));
        assert!(same_secret("", ""));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "bbc"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("ab", "abc"));
        assert!(!same_secret("", "a"));
        // Two differences that cancel under XOR are still differences.
        assert!(!same_secret("ab", "ba"));
        assert!(!same_secret("0011", "1100"));
    }

    #[test]
    fn the_session_id_is_64_hex_digits_from_its_own_cookie() {
        let id = random_token();
        assert_eq!(id.len(), 64);
        assert_ne!(id, random_token());
        let h = headers(&["a=1", &format!("x=2; {SESSION_COOKIE}={id}; b=3")]);
        assert_eq!(session_id(&h).as_deref(), Some(id.as_str()));
        // Another cookie with the value, a short or non-hex value: no session.
        assert_eq!(session_id(&headers(&[&format!("other={id}")])), None);
        assert_eq!(
            session_id(&headers(&[&format!("{SESSION_COOKIE}={}", &id[1..])])),
            None
        );
        let not_hex = format!("{}g", &id[1..]);
        assert_eq!(
            session_id(&headers(&[&format!("{SESSION_COOKIE}={not_hex}")])),
            None
        );
        assert_eq!(session_id(&HeaderMap::new()), None);
    }

    #[test]
    fn the_cookies_are_host_only_secure_httponly_strict() {
        assert_eq!(
            cookie("abc"),
            "__Host-shomei=abc; Path=/; Secure; HttpOnly; SameSite=Strict"
        );
        assert_eq!(
            clear_cookie(),
            "__Host-shomei=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"
        );
        assert_eq!(
            form_cookie("v", time::Duration::minutes(30)),
            "__Host-shomei-form=v; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=1800"
        );
    }

    /// The positive control: a form's own cookie and token are accepted.
    #[test]
    fn a_login_form_is_accepted_with_its_cookie_and_token_only() {
        let f = form();
        let v = f.issue(T0);
        let h = headers(&[&format!("{FORM_COOKIE}={v}")]);
        let t = f.token(nonce_of(&v));
        assert_eq!(f.valid_cookie(&h, T0).as_deref(), Some(nonce_of(&v)));
        assert!(f.accepts(&h, Some(&t), T0));
        // No token, another form's token, a token without its cookie.
        assert!(!f.accepts(&h, None, T0));
        let other = f.issue(T0);
        assert_ne!(other, v);
        assert!(!f.accepts(&h, Some(&f.token(nonce_of(&other))), T0));
        assert!(!f.accepts(&HeaderMap::new(), Some(&t), T0));
        // The token is not the cookie's MAC under another purpose.
        assert_ne!(t, v.rsplit_once('.').unwrap().1);
        assert!(!f.accepts(&h, Some(&v), T0));
    }

    /// A signed cookie passes only for what it was issued for and what it
    /// is bound to (a login form's never as a console session, one
    /// certificate's never for another's), with the positive control.
    #[test]
    fn a_signed_cookie_holds_only_for_its_purpose_and_binding() {
        let f = form();
        let life = time::Duration::minutes(5);
        let v = f.issue_signed(Signed::Console, "serial-a", None, T0);
        let nonce = nonce_of(&v).to_owned();
        let h = headers(&[&format!("{CONSOLE_COOKIE}={v}")]);
        let t = f.csrf_token(Signed::Console, "serial-a", &nonce);
        assert_eq!(
            f.accepts_signed(&h, Signed::Console, "serial-a", life, Some(&t), T0)
                .as_deref(),
            Some(nonce.as_str())
        );
        assert_eq!(
            f.accepts_signed(&h, Signed::Console, "serial-b", life, Some(&t), T0),
            None
        );
        let tb = f.csrf_token(Signed::Console, "serial-b", &nonce);
        assert_eq!(
            f.accepts_signed(&h, Signed::Console, "serial-b", life, Some(&tb), T0),
            None
        );
        // The same value under the console login form's name and purpose.
        let as_form = headers(&[&format!("{CONSOLE_FORM_COOKIE}={v}")]);
        let tf = f.csrf_token(Signed::ConsoleLogin, "serial-a", &nonce);
        assert_eq!(
            f.accepts_signed(
                &as_form,
                Signed::ConsoleLogin,
                "serial-a",
                life,
                Some(&tf),
                T0
            ),
            None
        );
        // Reissued with its nonce later: the same token, a new time.
        let later = T0 + time::Duration::minutes(4);
        let moved = f.issue_signed(Signed::Console, "serial-a", Some(&nonce), later);
        assert_eq!(nonce_of(&moved), nonce);
        let h2 = headers(&[&format!("{CONSOLE_COOKIE}={moved}")]);
        let at = T0 + time::Duration::minutes(8);
        assert!(
            f.accepts_signed(&h2, Signed::Console, "serial-a", life, Some(&t), at)
                .is_some()
        );
        assert_eq!(
            f.accepts_signed(&h, Signed::Console, "serial-a", life, Some(&t), at),
            None,
            "the first issue is past its lifetime"
        );
        assert_eq!(
            signed_cookie(Signed::Console, "v", life),
            "__Host-shomei-console=v; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=300"
        );
        assert_eq!(
            clear_signed_cookie(Signed::ConsoleLogin),
            "__Host-shomei-console-form=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0"
        );
    }

    #[test]
    fn a_login_form_cookie_of_another_key_or_altered_is_refused() {
        let f = form();
        let v = f.issue(T0);
        let other = LoginForm::new(b"another key", time::Duration::minutes(30));
        let h = headers(&[&format!("{FORM_COOKIE}={v}")]);
        assert_eq!(other.valid_cookie(&h, T0), None);
        assert!(!other.accepts(&h, Some(&other.token(nonce_of(&v))), T0));
        // Moving the issue time forward breaks the MAC.
        let (issued, rest) = v.split_once('.').unwrap();
        let later: i64 = issued.parse::<i64>().unwrap() + 3600;
        let moved = format!("{later}.{rest}");
        let h = headers(&[&format!("{FORM_COOKIE}={moved}")]);
        assert_eq!(f.valid_cookie(&h, T0), None);
        assert!(!f.accepts(&h, Some(&f.token(nonce_of(&moved))), T0));
        // A valid MAC on a body without a time.
        let body = "notatime";
        let odd = format!("{body}.{}", f.mac(&[Signed::LoginForm.label(), "", body]));
        let h = headers(&[&format!("{FORM_COOKIE}={odd}")]);
        assert_eq!(f.valid_cookie(&h, T0), None);
        // Over 200 characters is refused before anything is computed.
        let body = format!("{}.{}", T0.unix_timestamp(), "0".repeat(160));
        let long = format!("{body}.{}", f.mac(&[Signed::LoginForm.label(), "", &body]));
        assert!(long.len() > 200);
        let h = headers(&[&format!("{FORM_COOKIE}={long}")]);
        assert_eq!(f.valid_cookie(&h, T0), None);
        let body = format!("{}.{}", T0.unix_timestamp(), "0".repeat(60));
        let fits = format!("{body}.{}", f.mac(&[Signed::LoginForm.label(), "", &body]));
        assert!(fits.len() <= 200);
        let h = headers(&[&format!("{FORM_COOKIE}={fits}")]);
        assert_eq!(
            f.valid_cookie(&h, T0).as_deref(),
            Some("0".repeat(60).as_str())
        );
    }

    /// The MAC is HMAC-SHA256 over the parts joined by `|`, as every
    /// server on the database (of this version or the last) computes it:
    /// a cookie issued by one server holds on the others.
    #[test]
    fn the_mac_is_hmac_sha256_over_the_parts_joined_by_bars() {
        let f = form();
        let key = aws_lc_rs::hmac::Key::new(
            aws_lc_rs::hmac::HMAC_SHA256,
            b"the servers' shared form key",
        );
        let want = |msg: &str| hex::encode(aws_lc_rs::hmac::sign(&key, msg.as_bytes()).as_ref());
        assert_eq!(f.mac(&["form", "", "1.ab"]), want("form||1.ab"));
        assert_eq!(f.mac(&["csrf", "form", "", "ab"]), want("csrf|form||ab"));
        assert_ne!(f.mac(&["a", "bc"]), f.mac(&["ab", "c"]));
    }

    /// A cookie of exactly 200 characters is read; one more is not.
    #[test]
    fn a_signed_cookie_of_200_characters_is_read() {
        let f = form();
        let ts = T0.unix_timestamp().to_string();
        let nonce = "0".repeat(200 - 64 - 2 - ts.len());
        let body = format!("{ts}.{nonce}");
        let v = format!("{body}.{}", f.mac(&["form", "", &body]));
        assert_eq!(v.len(), 200);
        let h = headers(&[&format!("{FORM_COOKIE}={v}")]);
        assert_eq!(f.valid_cookie(&h, T0).as_deref(), Some(nonce.as_str()));
        let body = format!("{ts}.{nonce}0");
        let v = format!("{body}.{}", f.mac(&["form", "", &body]));
        let h = headers(&[&format!("{FORM_COOKIE}={v}")]);
        assert_eq!(f.valid_cookie(&h, T0), None);
    }

    /// Valid from a minute before its issue time (clocks of servers differ)
    /// to the end of its lifetime, both ends included.
    #[test]
    fn a_login_form_lives_its_lifetime_and_no_longer() {
        let f = form();
        let v = f.issue(T0);
        let h = headers(&[&format!("{FORM_COOKIE}={v}")]);
        let t = f.token(nonce_of(&v));
        let s = time::Duration::seconds;
        assert!(f.accepts(&h, Some(&t), T0 + s(1800)));
        assert!(!f.accepts(&h, Some(&t), T0 + s(1801)));
        assert!(f.accepts(&h, Some(&t), T0 - s(60)));
        assert!(!f.accepts(&h, Some(&t), T0 - s(61)));
        assert_eq!(f.valid_cookie(&h, T0 + s(1801)), None);
        assert_eq!(f.valid_cookie(&h, T0 - s(61)), None);
    }
}

/// Returning customers' device cookies (OWASP's defence against online
/// guessing): signed cookies ([`LoginForm`], [`Signed::Device`]) bound to
/// the login ID they were issued to, so one speaks for that login ID only
/// and says nothing of it. A login that brings one valid for the login ID
/// typed takes a reserved hashing place and is not counted against its
/// address; one that is forged, expired or another login ID's earns
/// nothing. It never replaces the password, and the lockout rules are the
/// same with it.
pub(crate) struct DeviceCookies {
    signer: std::sync::Arc<LoginForm>,
    lifetime: time::Duration,
}

/// What a login's device cookie is worth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Device {
    /// No device cookie came.
    None,
    /// Issued by us to this login ID, within its lifetime.
    Returning,
    /// Forged, expired or another login ID's: nothing earned.
    Refused,
}

impl DeviceCookies {
    pub(crate) fn new(signer: std::sync::Arc<LoginForm>, lifetime: time::Duration) -> Self {
        Self { signer, lifetime }
    }

    /// A fresh cookie value for `login_id`, issued at `now`.
    pub(crate) fn issue(&self, login_id: &str, now: OffsetDateTime) -> String {
        self.signer
            .issue_signed(Signed::Device, login_id, None, now)
    }

    /// What the device cookie in `headers` is worth for a login of
    /// `login_id` at `now`.
    pub(crate) fn check(
        &self,
        headers: &axum::http::HeaderMap,
        login_id: &str,
        now: OffsetDateTime,
    ) -> Device {
        if cookie_value(headers, DEVICE_COOKIE).is_none() {
            return Device::None;
        }
        let valid = LoginId::parse(login_id).is_some()
            && self
                .signer
                .signed_nonce(headers, Signed::Device, login_id, self.lifetime, now)
                .is_some();
        if valid {
            Device::Returning
        } else {
            Device::Refused
        }
    }

    /// The `Set-Cookie` value of a device cookie.
    pub(crate) fn set_cookie(&self, value: &str) -> String {
        format!(
            "{DEVICE_COOKIE}={value}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age={}",
            self.lifetime.whole_seconds()
        )
    }
}

#[cfg(test)]
mod device_tests {
    use super::{DEVICE_COOKIE, Device, DeviceCookies, LoginForm, Signed};
    use std::sync::Arc;
    use time::macros::datetime;

    fn with(value: &str) -> axum::http::HeaderMap {
        let mut h = axum::http::HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            format!("other=1; {DEVICE_COOKIE}={value}").parse().unwrap(),
        );
        h
    }

    #[test]
    fn a_device_cookie_speaks_for_its_login_id_within_its_lifetime_only() {
        let t0 = datetime!(2026-12-01 09:00 UTC);
        let signer = Arc::new(LoginForm::new(b"key", time::Duration::minutes(60)));
        let d = DeviceCookies::new(signer.clone(), time::Duration::days(180));
        let v = d.issue("hanakodt", t0);
        assert_eq!(d.check(&with(&v), "hanakodt", t0), Device::Returning);
        let later = t0 + time::Duration::days(180);
        assert_eq!(d.check(&with(&v), "hanakodt", later), Device::Returning);
        // Expired, another user's, forged (a changed byte, another key),
        // none at all.
        let expired = later + time::Duration::seconds(1);
        assert_eq!(d.check(&with(&v), "hanakodt", expired), Device::Refused);
        assert_eq!(d.check(&with(&v), "tarodt", t0), Device::Refused);
        let mut forged = v.clone().into_bytes();
        forged[0] = if forged[0] == b'1' { b'2' } else { b'1' };
        let forged = String::from_utf8(forged).unwrap();
        assert_eq!(d.check(&with(&forged), "hanakodt", t0), Device::Refused);
        let theirs = DeviceCookies::new(
            Arc::new(LoginForm::new(b"other key", time::Duration::minutes(60))),
            time::Duration::days(180),
        );
        assert_eq!(
            d.check(&with(&theirs.issue("hanakodt", t0)), "hanakodt", t0),
            Device::Refused
        );
        // A login form's cookie under the same key is no device cookie.
        let form = signer.issue_signed(Signed::LoginForm, "hanakodt", None, t0);
        assert_eq!(d.check(&with(&form), "hanakodt", t0), Device::Refused);
        assert_eq!(
            d.check(&axum::http::HeaderMap::new(), "hanakodt", t0),
            Device::None
        );
        assert!(d.set_cookie(&v).starts_with(&format!(
            "__Host-shomei-device={v}; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=15552000"
        )));
    }
}
