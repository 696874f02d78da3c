//! Every message the app shows, in one place: the window and the command
//! line say the same thing. Each error says what happened and what to do.

pub const TITLE: &str = "証明書発行アプリ";

pub const WRONG_PASSWORD: &str = "ログインIDまたはログインパスワードが正しくないか、ログインパスワードがロックされているか、利用者が停止されています。入力内容をご確認のうえ、もう一度お試しください。続けて誤るとロックされます。解決しない場合は、マスターユーザまたは管理者ユーザにお問い合わせください。";

pub const ALREADY_ISSUED: &str = "このログインIDには、有効な電子証明書が発行済です。新しいパソコンで発行するには、マスターユーザまたは管理者ユーザに証明書失効を依頼し、失効後にもう一度「証明書発行」を押してください。";

pub const USE_RENEWAL: &str = "この電子証明書は更新可です。証明書が入っているパソコンで「証明書更新」を押してください。このパソコンで新しく発行するには、マスターユーザまたは管理者ユーザに証明書失効を依頼してください。";

pub const NOT_RENEWABLE: &str = "この電子証明書は更新できません（失効済・有効期限切れ、または最新の証明書ではありません）。マスターユーザまたは管理者ユーザに証明書失効を依頼し、「証明書発行」から発行し直してください。";

pub const BUSY: &str =
    "ただいま銀行のサーバーが混み合っています。しばらく時間をおいてから、もう一度お試しください。";

pub const BAD_LOGIN_ID: &str = "ログインIDは半角英数字（64文字まで）で入力してください。";

pub const EMPTY_PASSWORD: &str = "ログインパスワードを入力してください。";

pub const NO_RENEWABLE: &str =
    "このパソコンには更新可の電子証明書がありません。「証明書発行」を押してください。";

pub const NOT_KEPT: &str = "この電子証明書の鍵は、このアプリの保管場所にありません（別のパソコンやアプリで発行された証明書です）。証明書ファイルがあれば「shomei-cert import --p12 ファイル」で取り込んでから更新してください。ない場合は、マスターユーザまたは管理者ユーザに証明書失効を依頼し、「証明書発行」を押してください。";

pub const NO_DISPLAY: &str = "画面を開けません（デスクトップに接続されていません）。デスクトップのメニューまたはブラウザの「証明書発行アプリの起動」から起動してください。技術者の方はコマンド（shomei-cert --help）もお使いいただけます。";

pub const CLOSE_BROWSERS: &str =
    "すべてのブラウザを一旦閉じ、再度ブラウザを起動してログイン画面へお進みください。";

pub fn unreachable(detail: &str) -> String {
    format!(
        "銀行のサーバーに接続できません。インターネットへの接続をご確認のうえ、しばらくしてからもう一度お試しください。解決しない場合は、ヘルプデスクにお問い合わせください。（詳細: {detail}）"
    )
}

pub fn server_error(status: &str, reason: &str) -> String {
    format!(
        "銀行のサーバーでエラーが発生しました（{status}: {reason}）。しばらくしてからもう一度お試しください。解決しない場合は、ヘルプデスクにお問い合わせください。"
    )
}

pub fn refused(reason: &str) -> String {
    format!(
        "銀行のサーバーが要求を受け付けませんでした（{reason}）。ヘルプデスクにお問い合わせください。"
    )
}

pub fn store_not_writable(place: &str, reason: &str) -> String {
    format!(
        "電子証明書の保存先（{place}）に書き込めません（{reason}）。フォルダーの権限と空き容量をご確認のうえ、もう一度お試しください。証明書はまだ発行されていません。"
    )
}

pub fn saved_nowhere(place: &str, reason: &str) -> String {
    format!(
        "電子証明書は発行されましたが、保存先{place}に保存できませんでした（{reason}）。このパソコンには何も保存されていません。マスターユーザまたは管理者ユーザに証明書失効を依頼し、もう一度「証明書発行」を押してください。"
    )
}

pub fn tool_missing(tool: &str) -> String {
    format!(
        "{tool} が見つかりません。パッケージ libnss3-tools（Debian/Ubuntu）または nss-tools をインストールしてから、もう一度お試しください。"
    )
}

pub fn config_problem(detail: &str) -> String {
    format!(
        "アプリの設定を読み込めません（{detail}）。証明書取得認証画面から「証明書発行アプリのダウンロード」をやり直してください。"
    )
}

pub fn local_problem(detail: &str) -> String {
    format!(
        "このパソコンでの処理に失敗しました（{detail}）。もう一度お試しください。解決しない場合は、ヘルプデスクにお問い合わせください。"
    )
}

pub fn install_failed(place: &str, reason: &str) -> String {
    format!(
        "インストールできませんでした（{place}: {reason}）。インストール先フォルダーを変更するか、フォルダーの権限と空き容量をご確認のうえ、もう一度お試しください。"
    )
}
