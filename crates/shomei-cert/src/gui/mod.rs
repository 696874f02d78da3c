//! The window 「証明書発行アプリ」: the setup (セットアップ → インストール先
//! フォルダー → インストール確認 → 完了), then 証明書取得 → 証明書取得認証 →
//! 処理中 → 結果, in the guide's words. Drawn in software (tiny-skia), so it
//! needs no GPU.
//!
//! The keyboard works the same on every screen: it opens with the focus on
//! its first input field, or on its default button when it has none; Tab
//! (Shift+Tab) moves in reading order; Enter presses the focused button, or
//! the default one when the focus is in a field; Space presses the focused
//! button.

mod keys;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;

use iced::widget::{Id, button, column, container, row, rule, scrollable, text, text_input};
use iced::{Border, Color, Element, Font, Length, Task, Theme};

use crate::bank::{Bank, Found, Outcome, Step};
use crate::fail::Fail;
use crate::{install, text as t};
pub use keys::Key;

/// Each screen of the app.
#[derive(Clone, Debug, PartialEq)]
pub enum Screen {
    /// セットアップ
    Welcome,
    /// インストール先フォルダー
    Folder { path: String },
    /// インストール確認; `busy` while the files are being copied.
    Confirm {
        path: String,
        error: Option<String>,
        busy: bool,
    },
    /// 完了 (of the setup)
    Finished,
    /// 証明書取得: `found` is None while the PC's stores are being read.
    Top {
        found: Option<Vec<Found>>,
        error: Option<String>,
    },
    /// 証明書取得認証
    Auth {
        login_id: String,
        password: String,
        error: Option<String>,
    },
    /// 処理中
    Working { step: Step, renewal: bool },
    /// 結果
    Result(Outcome),
}

impl Screen {
    /// The screen's name, in the title and in the log.
    pub fn name(&self) -> &'static str {
        match self {
            Screen::Welcome => "セットアップ",
            Screen::Folder { .. } => "インストール先フォルダー",
            Screen::Confirm { .. } => "インストール確認",
            Screen::Finished => "完了",
            Screen::Top { .. } => "証明書取得",
            Screen::Auth { .. } => "証明書取得認証",
            Screen::Working { .. } => "処理中",
            Screen::Result(_) => "結果",
        }
    }
}

/// What a button does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Next,
    Install,
    Finish,
    Cancel,
    Issue,
    Renew,
    Authenticate,
    Abort,
    Close,
}

impl Action {
    pub fn label(self) -> &'static str {
        match self {
            Action::Next => "次へ",
            Action::Install => "インストール",
            Action::Finish => "完了",
            Action::Cancel => "キャンセル",
            Action::Issue => "証明書発行",
            Action::Renew => "証明書更新",
            Action::Authenticate => "認証して発行",
            Action::Abort => "中断",
            Action::Close => "閉じる",
        }
    }
}

/// An input field of the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Folder,
    LoginId,
    Password,
}

impl Field {
    /// The field's label, as the screen shows it.
    pub fn label(self) -> &'static str {
        match self {
            Field::Folder => "インストール先フォルダー",
            Field::LoginId => "ログインID",
            Field::Password => "ログインパスワード",
        }
    }

    fn id(self) -> Id {
        Id::new(match self {
            Field::Folder => "folder",
            Field::LoginId => "login-id",
            Field::Password => "password",
        })
    }
}

/// What can hold the focus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Focus {
    Field(Field),
    Button(Action),
}

#[derive(Clone, Debug)]
pub enum Message {
    Key(Key),
    Press(Action),
    Edit(Field, String),
    Surveyed(Result<Vec<Found>, String>),
    Progress(Step),
    Done(Result<Outcome, String>),
    Installed(Result<PathBuf, String>),
    /// The focus has moved to this (the widgets know it from now on).
    Focused(Focus),
}

pub struct App {
    bank: Arc<dyn Bank>,
    places: install::Places,
    pub screen: Screen,
    pub focus: usize,
    /// The login ID being issued for, to show again after a refusal.
    pending_login: Option<String>,
}

/// Stands in for the bank when the app's configuration cannot be read:
/// every screen then tells why, and nothing is attempted.
pub struct NoBank(pub String);

impl Bank for NoBank {
    fn survey(&self) -> Result<Vec<Found>, Fail> {
        Err(Fail::Usage(self.0.clone()))
    }
    fn issue(&self, _: &str, _: &str, _: &mut dyn FnMut(Step)) -> Result<Outcome, Fail> {
        Err(Fail::Usage(self.0.clone()))
    }
    fn renew(&self, _: &str, _: &mut dyn FnMut(Step)) -> Result<Outcome, Fail> {
        Err(Fail::Usage(self.0.clone()))
    }
}

/// Runs `work` on a thread of its own; a panic there becomes an error
/// message, never a dead window.
fn on_thread<T: Send + 'static>(
    work: impl FnOnce(&mut dyn FnMut(Step)) -> Result<T, Fail> + Send + 'static,
    progress: bool,
    done: fn(Result<T, String>) -> Message,
) -> Task<Message> {
    let (tx, rx) = iced::futures::channel::mpsc::unbounded();
    std::thread::spawn(move || {
        let step_tx = tx.clone();
        let mut report = move |s: Step| {
            if progress {
                let _ = step_tx.unbounded_send(Message::Progress(s));
            }
        };
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(&mut report)));
        let r = match r {
            Ok(r) => r.map_err(|f| f.message().to_owned()),
            Err(_) => Err(t::local_problem("internal error")),
        };
        let _ = tx.unbounded_send(done(r));
    });
    Task::stream(rx)
}

impl App {
    pub fn new(
        bank: Arc<dyn Bank>,
        installed: bool,
        places: install::Places,
    ) -> (Self, Task<Message>) {
        let mut app = App {
            bank,
            places,
            screen: Screen::Welcome,
            focus: 0,
            pending_login: None,
        };
        let task = if installed {
            app.top(None)
        } else {
            app.open(Screen::Welcome)
        };
        (app, task)
    }

    /// The focusable things of the screen, in reading order.
    pub fn focusables(&self) -> Vec<Focus> {
        use Focus::{Button as B, Field as F};
        match &self.screen {
            Screen::Welcome => vec![B(Action::Next), B(Action::Cancel)],
            Screen::Folder { .. } => vec![F(Field::Folder), B(Action::Next), B(Action::Cancel)],
            Screen::Confirm { busy: true, .. } => vec![],
            Screen::Confirm { .. } => vec![B(Action::Install), B(Action::Cancel)],
            Screen::Finished => vec![B(Action::Finish)],
            Screen::Top { found, .. } => {
                let mut v = vec![B(Action::Issue)];
                if self.renewable(found).is_some() {
                    v.push(B(Action::Renew));
                }
                v.push(B(Action::Close));
                v
            }
            Screen::Auth { .. } => vec![
                F(Field::LoginId),
                F(Field::Password),
                B(Action::Authenticate),
                B(Action::Abort),
            ],
            Screen::Working { .. } => vec![],
            Screen::Result(_) => vec![B(Action::Close)],
        }
    }

    /// The button Enter presses from a field.
    pub fn default_action(&self) -> Option<Action> {
        Some(match &self.screen {
            Screen::Welcome | Screen::Folder { .. } => Action::Next,
            Screen::Confirm { busy: true, .. } => return None,
            Screen::Confirm { .. } => Action::Install,
            Screen::Finished => Action::Finish,
            Screen::Top { found, .. } if self.renewable(found).is_some() => Action::Renew,
            Screen::Top { .. } => Action::Issue,
            Screen::Auth { .. } => Action::Authenticate,
            Screen::Working { .. } => return None,
            Screen::Result(_) => Action::Close,
        })
    }

    pub fn focused(&self) -> Option<Focus> {
        self.focusables().get(self.focus).copied()
    }

    fn renewable<'a>(&self, found: &'a Option<Vec<Found>>) -> Option<&'a Found> {
        found.as_ref()?.iter().find(|f| f.renewable)
    }

    /// Shows `screen` with the focus where it opens.
    /// Where the focus is when the screen opens: the first field, else the
    /// default button.
    fn first_focus(&self) -> usize {
        let all = self.focusables();
        let first_field = all.iter().position(|f| matches!(f, Focus::Field(_)));
        let default = self
            .default_action()
            .and_then(|a| all.iter().position(|f| *f == Focus::Button(a)));
        first_field.or(default).unwrap_or(0)
    }

    fn open(&mut self, screen: Screen) -> Task<Message> {
        self.screen = screen;
        self.focus = self.first_focus();
        eprintln!("shomei-cert: 画面 {}", self.screen.name());
        self.focus_task()
    }

    /// Moves the widgets' focus to `self.focus`; once it is there, the app
    /// logs it (a key typed before lands where the focus was: the tests
    /// wait for this line, as a person waits for the cursor).
    fn focus_task(&self) -> Task<Message> {
        let Some(focus) = self.focused() else {
            return iced::advanced::widget::operate(
                iced::advanced::widget::operation::focusable::unfocus::<()>(),
            )
            .discard();
        };
        let moved = match focus {
            Focus::Field(f) => iced::widget::operation::focus(f.id()),
            Focus::Button(_) => iced::advanced::widget::operate(
                iced::advanced::widget::operation::focusable::unfocus::<()>(),
            )
            .discard(),
        };
        moved.chain(Task::done(Message::Focused(focus)))
    }

    fn top(&mut self, error: Option<String>) -> Task<Message> {
        let open = self.open(Screen::Top { found: None, error });
        let bank = self.bank.clone();
        let survey = on_thread(move |_| bank.survey(), false, Message::Surveyed);
        Task::batch([open, survey])
    }

    pub fn update(&mut self, message: Message) -> Task<Message> {
        match message {
            Message::Key(k) => self.key(k),
            Message::Press(a) => self.press(a),
            Message::Edit(field, value) => {
                match (&mut self.screen, field) {
                    (Screen::Folder { path }, Field::Folder) => *path = value,
                    (Screen::Auth { login_id, .. }, Field::LoginId) => *login_id = value,
                    (Screen::Auth { password, .. }, Field::Password) => *password = value,
                    _ => return Task::none(),
                }
                if let Some(i) = self
                    .focusables()
                    .iter()
                    .position(|f| *f == Focus::Field(field))
                {
                    self.focus = i;
                }
                Task::none()
            }
            Message::Surveyed(r) => {
                let Screen::Top { found, error } = &mut self.screen else {
                    return Task::none();
                };
                match r {
                    Ok(list) => {
                        let renewable = list.iter().filter(|f| f.renewable).count();
                        eprintln!(
                            "shomei-cert: 証明書 {}件（更新可 {renewable}件）",
                            list.len()
                        );
                        *found = Some(list);
                    }
                    Err(e) => {
                        eprintln!("shomei-cert: エラー {e}");
                        *found = Some(Vec::new());
                        *error = Some(e);
                    }
                }
                // The list may bring 証明書更新: the screen opens anew, but a
                // focus the person moved meanwhile stays where it is (a Tab
                // to 閉じる then Enter must not press 証明書発行).
                let e = error.take();
                let f = found.take();
                let kept = (self.focus != self.first_focus())
                    .then(|| self.focused())
                    .flatten();
                let task = self.open(Screen::Top { found: f, error: e });
                match kept.and_then(|k| self.focusables().iter().position(|f| *f == k)) {
                    Some(i) if i != self.focus => {
                        self.focus = i;
                        self.focus_task()
                    }
                    _ => task,
                }
            }
            Message::Progress(s) => {
                if let Screen::Working { step, .. } = &mut self.screen {
                    *step = s;
                    eprintln!("shomei-cert: 処理 {}", s.label());
                }
                Task::none()
            }
            Message::Focused(f) => {
                let name = match f {
                    Focus::Field(f) => f.label(),
                    Focus::Button(a) => a.label(),
                };
                eprintln!("shomei-cert: フォーカス {name}");
                Task::none()
            }
            Message::Installed(r) => {
                let Screen::Confirm { path, .. } = &self.screen else {
                    return Task::none();
                };
                match r {
                    Ok(_) => self.open(Screen::Finished),
                    Err(e) => {
                        eprintln!("shomei-cert: エラー {e}");
                        let path = path.clone();
                        self.open(Screen::Confirm {
                            path,
                            error: Some(e),
                            busy: false,
                        })
                    }
                }
            }
            Message::Done(Ok(outcome)) => self.open(Screen::Result(outcome)),
            Message::Done(Err(e)) => {
                eprintln!("shomei-cert: エラー {e}");
                match &self.screen {
                    Screen::Working { renewal: true, .. } => self.top(Some(e)),
                    Screen::Working { renewal: false, .. } => {
                        let login_id = self.pending_login.take().unwrap_or_default();
                        self.open(Screen::Auth {
                            login_id,
                            password: String::new(),
                            error: Some(e),
                        })
                    }
                    _ => Task::none(),
                }
            }
        }
    }

    fn key(&mut self, k: Key) -> Task<Message> {
        let n = self.focusables().len();
        if n == 0 {
            return Task::none();
        }
        match k {
            Key::Tab => {
                self.focus = (self.focus + 1) % n;
                self.focus_task()
            }
            Key::BackTab => {
                self.focus = (self.focus + n - 1) % n;
                self.focus_task()
            }
            Key::Enter => match self.focused() {
                Some(Focus::Button(a)) => self.press(a),
                _ => match self.default_action() {
                    Some(a) => self.press(a),
                    None => Task::none(),
                },
            },
            Key::Space => match self.focused() {
                Some(Focus::Button(a)) => self.press(a),
                _ => Task::none(),
            },
        }
    }

    fn press(&mut self, a: Action) -> Task<Message> {
        if !self.focusables().contains(&Focus::Button(a)) {
            return Task::none();
        }
        match (a, &self.screen) {
            (Action::Cancel, _) | (Action::Close, _) => {
                eprintln!("shomei-cert: 終了");
                iced::exit()
            }
            (Action::Next, Screen::Welcome) => self.open(Screen::Folder {
                path: self.places.default_dir.display().to_string(),
            }),
            (Action::Next, Screen::Folder { path }) => {
                let path = path.clone();
                self.open(Screen::Confirm {
                    path,
                    error: None,
                    busy: false,
                })
            }
            (Action::Install, Screen::Confirm { path, .. }) => {
                let path = path.clone();
                self.screen = Screen::Confirm {
                    path: path.clone(),
                    error: None,
                    busy: true,
                };
                let places = self.places.clone();
                on_thread(
                    move |_| install::install(&PathBuf::from(path), &places),
                    false,
                    Message::Installed,
                )
            }
            (Action::Finish, Screen::Finished) => self.top(None),
            (Action::Issue, Screen::Top { .. }) => self.open(Screen::Auth {
                login_id: String::new(),
                password: String::new(),
                error: None,
            }),
            (Action::Renew, Screen::Top { found, .. }) => {
                let Some(serial) = self.renewable(found).map(|f| f.serial_hex.clone()) else {
                    return Task::none();
                };
                let bank = self.bank.clone();
                let open = self.open(Screen::Working {
                    step: Step::Auth,
                    renewal: true,
                });
                let work = on_thread(move |p| bank.renew(&serial, p), true, Message::Done);
                Task::batch([open, work])
            }
            (
                Action::Authenticate,
                Screen::Auth {
                    login_id, password, ..
                },
            ) => {
                let (login_id, password) = (login_id.trim().to_owned(), password.clone());
                if let Err(e) = crate::enroll::check_login_id(&login_id) {
                    return self.auth_error(login_id, e.message());
                }
                if password.is_empty() {
                    return self.auth_error(login_id, t::EMPTY_PASSWORD);
                }
                self.pending_login = Some(login_id.clone());
                let bank = self.bank.clone();
                let open = self.open(Screen::Working {
                    step: Step::Auth,
                    renewal: false,
                });
                let work = on_thread(
                    move |p| bank.issue(&login_id, &password, p),
                    true,
                    Message::Done,
                );
                Task::batch([open, work])
            }
            (Action::Abort, Screen::Auth { .. }) => self.top(None),
            _ => Task::none(),
        }
    }

    fn auth_error(&mut self, login_id: String, e: &str) -> Task<Message> {
        eprintln!("shomei-cert: エラー {e}");
        self.open(Screen::Auth {
            login_id,
            password: String::new(),
            error: Some(e.to_owned()),
        })
    }

    pub fn title(&self) -> String {
        format!("{} - {}", t::TITLE, self.screen.name())
    }

    fn button(&self, a: Action) -> Element<'_, Message> {
        let focused = self.focused() == Some(Focus::Button(a));
        let primary = self.default_action() == Some(a);
        button(text(a.label()).size(16))
            .padding([8, 22])
            .on_press(Message::Press(a))
            .style(move |theme: &Theme, status| {
                let mut s = if primary {
                    button::primary(theme, status)
                } else {
                    button::secondary(theme, status)
                };
                if focused {
                    s.border = Border {
                        color: Color::from_rgb8(0xf0, 0x8c, 0x00),
                        width: 3.0,
                        radius: 4.0.into(),
                    };
                }
                s
            })
            .into()
    }

    fn buttons(&self, actions: &[Action]) -> Element<'_, Message> {
        let mut r = row![].spacing(12);
        for a in actions {
            if self.focusables().contains(&Focus::Button(*a)) {
                r = r.push(self.button(*a));
            }
        }
        container(r)
            .width(Length::Fill)
            .align_right(Length::Fill)
            .into()
    }

    fn field<'a>(
        &self,
        label: &'a str,
        f: Field,
        value: &'a str,
        secure: bool,
    ) -> Element<'a, Message> {
        column![
            text(label).size(14),
            text_input("", value)
                .id(f.id())
                .secure(secure)
                .on_input(move |v| Message::Edit(f, v))
                .padding(8)
                .size(16),
        ]
        .spacing(4)
        .into()
    }

    pub fn view(&self) -> Element<'_, Message> {
        let body: Element<'_, Message> = match &self.screen {
            Screen::Welcome => column![
                heading("証明書発行アプリ セットアップへようこそ"),
                para("このセットアップは、証明書発行アプリをお使いのパソコンにインストールします。管理者の権限は必要ありません（このユーザーだけにインストールします）。"),
                para("続行するには「次へ」を押してください。"),
                self.buttons(&[Action::Next, Action::Cancel]),
            ]
            .spacing(16)
            .into(),
            Screen::Folder { path } => column![
                heading("インストール先フォルダーの選択"),
                para("次のフォルダーにインストールします。別のフォルダーにインストールするには、フォルダー名を入力してください。"),
                self.field("インストール先フォルダー", Field::Folder, path, false),
                self.buttons(&[Action::Next, Action::Cancel]),
            ]
            .spacing(16)
            .into(),
            Screen::Confirm { path, error, busy } => column![
                heading("インストール確認"),
                error_box(error),
                para(if *busy {
                    "インストールしています。しばらくお待ちください…"
                } else {
                    "次の内容でインストールします。よろしければ「インストール」を押してください。"
                }),
                info_rows(vec![
                    ("インストール先", path.clone()),
                    ("メニュー", "「証明書発行アプリ」を追加します".into()),
                    ("起動", "証明書取得認証画面の「証明書発行アプリの起動」から起動できるようにします".into()),
                ]),
                self.buttons(&[Action::Install, Action::Cancel]),
            ]
            .spacing(16)
            .into(),
            Screen::Finished => column![
                heading("セットアップ完了"),
                para("証明書発行アプリのインストールが完了しました。「完了」を押すとセットアップを終了し、証明書発行アプリを起動します。"),
                self.buttons(&[Action::Finish]),
            ]
            .spacing(16)
            .into(),
            Screen::Top { found, error } => {
                let list: Element<'_, Message> = match found {
                    None => para("このパソコンの電子証明書を確認しています…"),
                    Some(_) if error.is_some() => {
                        para("このパソコンの電子証明書の状態を確認できませんでした。")
                    }
                    Some(l) if l.is_empty() => {
                        para("このパソコンには、この銀行の電子証明書はありません。")
                    }
                    Some(l) => cert_table(l),
                };
                let lead = if self.renewable(found).is_some() {
                    "更新可の電子証明書があります。「証明書更新」を押すと、新しい電子証明書に更新します。"
                } else {
                    "電子証明書を発行します。「証明書発行」を押してください。"
                };
                column![
                    stepper(Step::Obtain, false),
                    heading("証明書取得"),
                    error_box(error),
                    para(lead),
                    text("このパソコンの電子証明書").size(14),
                    list,
                    self.buttons(&[Action::Issue, Action::Renew, Action::Close]),
                ]
                .spacing(14)
                .into()
            }
            Screen::Auth {
                login_id,
                password,
                error,
            } => column![
                stepper(Step::Auth, true),
                heading("証明書取得認証"),
                error_box(error),
                para("ログインIDとログインパスワードを入力して、「認証して発行」を押してください。"),
                self.field("ログインID", Field::LoginId, login_id, false),
                self.field("ログインパスワード", Field::Password, password, true),
                self.buttons(&[Action::Authenticate, Action::Abort]),
            ]
            .spacing(14)
            .into(),
            Screen::Working { step, .. } => column![
                stepper(*step, true),
                heading("処理中"),
                para("電子証明書を取得しています。このままお待ちください（画面を閉じないでください）。"),
                para(format!("現在の処理: {}", step.label())),
            ]
            .spacing(16)
            .into(),
            Screen::Result(o) => {
                let mut rows = vec![
                    ("ログインID", o.login_id.clone()),
                    ("証明書状態", o.state.clone()),
                    ("証明書有効期限", o.not_after.clone()),
                    ("保存先", o.stored_in.join("\n")),
                ];
                if !o.removed.is_empty() {
                    rows.push(("古い証明書", o.removed.join("\n")));
                }
                column![
                    stepper(Step::Done, true),
                    heading("結果"),
                    para("電子証明書の取得が完了しました。"),
                    info_rows(rows),
                    para(t::CLOSE_BROWSERS),
                    self.buttons(&[Action::Close]),
                ]
                .spacing(14)
                .into()
            }
        };
        let bar = container(text(self.title()).size(15).color(Color::WHITE))
            .padding([8, 16])
            .width(Length::Fill)
            .style(|_| container::Style::default().background(Color::from_rgb8(0x1d, 0x4e, 0x89)));
        let page = column![bar, scrollable(container(body).padding(20))];
        keys::keys(page, Message::Key).into()
    }
}

fn heading(s: &str) -> Element<'_, Message> {
    text(s)
        .size(22)
        .font(Font {
            weight: iced::font::Weight::Bold,
            ..Font::DEFAULT
        })
        .into()
}

fn para(s: impl Into<String>) -> Element<'static, Message> {
    text(s.into()).size(15).into()
}

fn error_box(error: &Option<String>) -> Element<'_, Message> {
    match error {
        None => column![].into(),
        Some(e) => container(
            text(e.as_str())
                .size(15)
                .color(Color::from_rgb8(0xb0, 0x00, 0x20)),
        )
        .padding(12)
        .width(Length::Fill)
        .style(|_| {
            container::Style::default()
                .background(Color::from_rgb8(0xfd, 0xec, 0xee))
                .border(Border {
                    color: Color::from_rgb8(0xb0, 0x00, 0x20),
                    width: 1.0,
                    radius: 4.0.into(),
                })
        })
        .into(),
    }
}

fn info_rows(rows: Vec<(&'static str, String)>) -> Element<'static, Message> {
    let mut c = column![].spacing(6);
    for (k, v) in rows {
        c = c.push(row![text(k).size(14).width(140), text(v).size(14)].spacing(12));
    }
    container(c)
        .padding(10)
        .width(Length::Fill)
        .style(container::bordered_box)
        .into()
}

fn cert_table(list: &[Found]) -> Element<'_, Message> {
    let head = row![
        text("ログインID").size(14).width(140),
        text("証明書状態").size(14).width(120),
        text("証明書有効期限").size(14),
    ]
    .spacing(12);
    let mut c = column![head, rule::horizontal(1)].spacing(6);
    for f in list {
        c = c.push(
            row![
                text(f.login_id.as_str()).size(14).width(140),
                text(f.state.as_str()).size(14).width(120),
                text(f.not_after.as_str()).size(14),
            ]
            .spacing(12),
        );
    }
    container(c)
        .padding(10)
        .width(Length::Fill)
        .style(container::bordered_box)
        .into()
}

/// 個人認証 → 証明書取得 → 処理中 → 取得完了, the current one marked.
fn stepper(current: Step, reached: bool) -> Element<'static, Message> {
    let mut r = row![].spacing(6);
    for s in Step::ALL {
        let on = reached && s == current;
        let label = text(s.label()).size(13).color(if on {
            Color::WHITE
        } else {
            Color::from_rgb8(0x44, 0x44, 0x44)
        });
        r = r.push(container(label).padding([4, 12]).style(move |_| {
            container::Style::default()
                .background(if on {
                    Color::from_rgb8(0x1d, 0x4e, 0x89)
                } else {
                    Color::from_rgb8(0xe4, 0xe8, 0xee)
                })
                .border(Border {
                    radius: 3.0.into(),
                    ..Border::default()
                })
        }));
    }
    r.into()
}

/// Japanese text for a Windows without a Japanese font: a subset of Noto
/// Sans CJK JP (JIS X 0208's characters, ASCII and half-width katakana;
/// SIL Open Font License) that scripts/build-windows makes and the setup
/// installs its licence beside. Text is drawn in a font of the system
/// when one has the character (Yu Gothic or Meiryo on a Japanese Windows),
/// in this one otherwise, so no screen shows empty boxes. Linux takes its
/// fonts from the system (the package recommends fonts-noto-cjk).
#[cfg(windows)]
const FALLBACK_FONT: &[u8] = include_bytes!(env!(
    "SHOMEI_CERT_FALLBACK_FONT",
    "the Windows app is built by scripts/build-windows, which makes its fallback font"
));

/// The program as iced runs it, on screen or in the tests' emulator.
#[cfg_attr(not(windows), allow(clippy::let_and_return))]
pub fn application(
    bank: Arc<dyn Bank>,
    installed: bool,
    places: install::Places,
) -> iced::Application<impl iced::Program<State = App, Message = Message, Theme = Theme>> {
    let app = iced::application(
        move || App::new(bank.clone(), installed, places.clone()),
        App::update,
        App::view,
    )
    .title(App::title)
    .theme(|_: &App| Theme::Light)
    .window(iced::window::Settings {
        size: iced::Size::new(720.0, 560.0),
        #[cfg(not(windows))]
        platform_specific: iced::window::settings::PlatformSpecific {
            // WM_CLASS on X11, app id on Wayland: what the menu entry names.
            application_id: "shomei-cert".into(),
            ..Default::default()
        },
        ..Default::default()
    });
    #[cfg(windows)]
    let app = app.font(FALLBACK_FONT);
    app
}

/// Opens the window; returns when it is closed.
pub fn run(bank: Arc<dyn Bank>, installed: bool, places: install::Places) -> Result<(), Fail> {
    // Windows always has a desktop for a window program.
    let has_display = cfg!(windows)
        || ["DISPLAY", "WAYLAND_DISPLAY", "WAYLAND_SOCKET"]
            .iter()
            .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()));
    if !has_display {
        return Err(Fail::Usage(t::NO_DISPLAY.into()));
    }
    // iced panics when the display cannot be opened; that is told as an
    // error in one line, like any other.
    std::panic::set_hook(Box::new(|info| eprintln!("shomei-cert: {info}")));
    let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        application(bank, installed, places).run()
    }));
    match ran {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(Fail::Local(t::local_problem(&format!("the window: {e}")))),
        Err(_) => Err(Fail::Local(t::NO_DISPLAY.into())),
    }
}
