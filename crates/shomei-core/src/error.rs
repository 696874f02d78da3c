//! User-facing problems that are not authority refusals, with their messages.

/// A problem the user must be told about, in the screen's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// Wrong ID, wrong password, unknown ID, locked or stopped user: one message
    /// for all, so that nobody learns whether a login ID exists.
    #[error("login failed")]
    LoginFailed,
    /// Too many failed logins from the client's address lately.
    #[error("too many failed logins from this address")]
    AddressThrottled,
    #[error("the confirmation password is wrong")]
    /// The 確認用パスワード given was wrong (the failure is counted).
    ConfirmPasswordWrong,
    #[error("the confirmation password is stopped")]
    /// The 確認用パスワード is stopped: nothing that needs it can be done.
    ConfirmPasswordStopped,
    #[error("no user selected")]
    /// A list screen was submitted without choosing a user.
    NothingSelected,
    #[error("the operation was already carried out")]
    /// The change was already made (a second submit of the same form).
    AlreadyDone,
    #[error("the session expired")]
    /// The session ended (idle timeout, logout, revocation) before the
    /// request.
    SessionExpired,
    #[error("the form is stale or forged")]
    /// The CSRF token or the confirmation step does not match.
    BadForm,
    #[error("the certificate changed since it was shown")]
    /// The certificate shown on the confirmation screen is no longer the
    /// user's newest: nothing is done to a certificate nobody confirmed.
    Changed,
    /// As many checks of this password are in flight as the lockout still
    /// allows: refused without checking.
    #[error("too many checks of this password at once")]
    TooManyAtOnce,
    /// Every password-hashing worker and queue place is taken.
    #[error("the server is busy")]
    Busy,
    /// The server cannot confirm its revocation view is current.
    #[error("the revocation view is not current")]
    ViewStale,
}

/// The busy page's message (HTTP 503 with Retry-After).
pub const BUSY_MESSAGE: &str = "ただいま混雑しています。しばらくしてから再度お試しください。";

impl Problem {
    /// The screen's message for this problem.
    pub fn message_ja(self) -> &'static str {
        match self {
            Problem::LoginFailed => {
                "ログインできませんでした。ログインIDとログインパスワードをご確認ください。連続して誤るとログインパスワードの利用が停止されます。停止の解除はマスターユーザまたは管理者ユーザにご依頼ください。"
            }
            Problem::AddressThrottled => {
                "ご利用の接続元からのログインの失敗が続いたため、しばらくの間ログインできません。時間をおいて再度お試しください。"
            }
            Problem::ConfirmPasswordWrong => {
                "確認パスワードが正しくありません。連続して誤ると確認用パスワードの利用が停止されます。"
            }
            Problem::ConfirmPasswordStopped => {
                "確認用パスワードの利用が停止されているため、この操作は行えません。マスターユーザまたは管理者ユーザに停止の解除をご依頼ください。"
            }
            Problem::NothingSelected => "利用者を選択してください。",
            Problem::AlreadyDone => {
                "この操作は既に実行済みです。利用者一覧で現在の状態をご確認ください。"
            }
            Problem::SessionExpired => {
                "一定時間操作がなかったため、ログアウトしました。再度ログインしてください。"
            }
            Problem::BadForm => {
                "画面の有効期限が切れたか、不正な操作が行われました。もう一度操作してください。"
            }
            Problem::Changed => {
                "対象の利用者の証明書状態が変更されています。利用者一覧から操作をやり直してください。"
            }
            Problem::TooManyAtOnce => {
                "同じパスワードの照合が同時に多数行われたため、受け付けできませんでした。しばらくしてから再度お試しください。"
            }
            Problem::Busy => BUSY_MESSAGE,
            Problem::ViewStale => {
                "現在、電子証明書の失効情報を確認できないため、電子証明書方式のログインを受け付けられません。しばらくしてから再度お試しいただくか、ID・パスワード方式でログインしてください。"
            }
        }
    }
}
