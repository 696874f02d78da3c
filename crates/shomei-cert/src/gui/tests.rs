//! The window driven headless by iced's own emulator (the real program:
//! its widgets, tasks and worker threads) with keys and typing, against a
//! bank that answers what each case needs. Focus and Tab order are also
//! checked on the app's state directly.

use std::sync::{Arc, Mutex};

use iced::futures::StreamExt;
use iced::futures::channel::mpsc;
use iced_test::Emulator;
use iced_test::emulator::{Event, Mode};
use iced_test::instruction::{Expectation, Instruction, Interaction, Key as K, Keyboard};

use super::*;

type Answer = Box<dyn Fn() -> Result<Outcome, Fail> + Send + Sync>;

/// A bank that records what it was asked and answers as told.
struct Fake {
    found: Result<Vec<Found>, String>,
    answer: Answer,
    asked: Mutex<Vec<String>>,
}

impl Fake {
    fn new(found: Vec<Found>, answer: Answer) -> Arc<Self> {
        Arc::new(Fake {
            found: Ok(found),
            answer,
            asked: Mutex::new(Vec::new()),
        })
    }
    fn asked(&self) -> Vec<String> {
        self.asked.lock().unwrap().clone()
    }
}

impl Bank for Fake {
    fn survey(&self) -> Result<Vec<Found>, Fail> {
        self.found.clone().map_err(Fail::Network)
    }
    fn issue(&self, id: &str, pw: &str, progress: &mut dyn FnMut(Step)) -> Result<Outcome, Fail> {
        self.asked.lock().unwrap().push(format!("issue {id} {pw}"));
        for s in Step::ALL {
            progress(s);
        }
        (self.answer)()
    }
    fn renew(&self, serial: &str, progress: &mut dyn FnMut(Step)) -> Result<Outcome, Fail> {
        self.asked.lock().unwrap().push(format!("renew {serial}"));
        progress(Step::Obtain);
        (self.answer)()
    }
}

fn outcome() -> Result<Outcome, Fail> {
    Ok(Outcome {
        login_id: "jirodt".into(),
        state: "発行済".into(),
        not_after: "2027年12月01日 08時59分59秒".into(),
        stored_in: vec!["/home/u/.pki/nssdb（Chromium / Google Chrome）".into()],
        removed: vec!["tarodt（旧証明書、シリアル 0a、有効期限 2026年12月20日 08時59分59秒）を /home/u/.pki/nssdb から削除しました".into()],
    })
}

fn tarodt_renewable() -> Vec<Found> {
    vec![Found {
        login_id: "tarodt".into(),
        serial_hex: "0a1b".into(),
        not_after: "2026年12月20日 08時59分59秒".into(),
        state: "更新可".into(),
        renewable: true,
    }]
}

/// The emulator and its event channel; every step waits until the program
/// is idle again (its tasks and worker threads done).
struct Ui<P: iced::Program + 'static> {
    program: P,
    emu: Emulator<P>,
    rx: mpsc::Receiver<Event<P>>,
    _dir: tempfile::TempDir,
}

fn places(dir: &std::path::Path) -> install::Places {
    install::Places {
        default_dir: dir.join("app"),
        applications: dir.join("applications"),
        mimeapps: dir.join("mimeapps.list"),
    }
}

fn ui(
    bank: Arc<dyn Bank>,
    installed: bool,
) -> Ui<impl iced::Program<State = App, Message = Message, Theme = Theme> + 'static> {
    let dir = tempfile::tempdir().unwrap();
    let program = application(bank, installed, places(dir.path()));
    let (tx, rx) = mpsc::channel(64);
    let emu = Emulator::new(tx, &program, Mode::Zen, iced::Size::new(720.0, 560.0));
    let mut ui = Ui {
        program,
        emu,
        rx,
        _dir: dir,
    };
    ui.settle();
    ui
}

impl<P: iced::Program<State = App, Message = Message, Theme = Theme> + 'static> Ui<P> {
    fn settle(&mut self) {
        loop {
            match iced::futures::executor::block_on(self.rx.next()) {
                Some(Event::Action(a)) => self.emu.perform(&self.program, a),
                Some(Event::Ready) => return,
                Some(Event::Failed(i)) => panic!("failed: {i}"),
                None => panic!("the emulator stopped"),
            }
        }
    }

    /// Whether the emulator finds `s` on the screen.
    fn shows(&mut self, s: &str) -> bool {
        self.emu.run(
            &self.program,
            Instruction::Expect(Expectation::Text(s.to_owned())),
        );
        loop {
            match iced::futures::executor::block_on(self.rx.next()) {
                Some(Event::Action(a)) => self.emu.perform(&self.program, a),
                Some(Event::Ready) => return true,
                Some(Event::Failed(_)) => return false,
                None => return false,
            }
        }
    }

    fn press(&mut self, k: K) -> &mut Self {
        self.emu.run(
            &self.program,
            Instruction::Interact(Interaction::Keyboard(Keyboard::Type(k))),
        );
        self.settle();
        self
    }

    fn typewrite(&mut self, s: &str) -> &mut Self {
        self.emu.run(
            &self.program,
            Instruction::Interact(Interaction::Keyboard(Keyboard::Typewrite(s.to_owned()))),
        );
        self.settle();
        self
    }

    /// The app's state at the end, and the folder the setup wrote into.
    fn state(self) -> (App, tempfile::TempDir) {
        (self.emu.into_state().0, self._dir)
    }
}

#[test]
fn setup_is_enter_four_times_and_installs_menu_entry_and_link_handler() {
    let bank = Fake::new(vec![], Box::new(outcome));
    let mut ui = ui(bank, false);
    assert!(ui.shows("証明書発行アプリ セットアップへようこそ"));
    ui.press(K::Enter);
    assert!(ui.shows("インストール先フォルダーの選択"));
    let dir = ui._dir.path().to_owned();
    assert!(
        ui.shows(&dir.join("app").display().to_string()),
        "the default folder is shown"
    );
    ui.press(K::Enter);
    assert!(ui.shows("インストール確認"));
    ui.press(K::Enter);
    assert!(ui.shows("セットアップ完了"));
    ui.press(K::Enter);
    assert!(ui.shows("証明書取得"));
    assert!(ui.shows("このパソコンには、この銀行の電子証明書はありません。"));
    let (app, _dir) = ui.state();
    assert!(matches!(app.screen, Screen::Top { .. }));
    assert_eq!(app.focused(), Some(Focus::Button(Action::Issue)));

    let copied = dir.join("app/shomei-cert");
    assert!(copied.is_file() && dir.join("app/.shomei-cert-installed").is_file());
    let entry = std::fs::read_to_string(dir.join("applications/shomei-cert.desktop")).unwrap();
    assert!(entry.contains("Name=証明書発行アプリ"), "{entry}");
    assert!(
        entry.contains(&format!("Exec=\"{}\" open %u", copied.display())),
        "{entry}"
    );
    assert!(
        entry.contains("MimeType=x-scheme-handler/shomei-cert;"),
        "{entry}"
    );
    let mime = std::fs::read_to_string(dir.join("mimeapps.list")).unwrap();
    assert!(
        mime.contains("[Default Applications]\nx-scheme-handler/shomei-cert=shomei-cert.desktop"),
        "{mime}"
    );
}

#[test]
fn issue_is_enter_then_id_tab_password_enter_and_the_result_says_all() {
    let bank = Fake::new(vec![], Box::new(outcome));
    let mut ui = ui(bank.clone(), true);
    assert!(ui.shows("電子証明書を発行します。「証明書発行」を押してください。"));
    ui.press(K::Enter);
    assert!(
        ui.shows("ログインIDとログインパスワードを入力して、「認証して発行」を押してください。")
    );
    ui.typewrite("jirodt")
        .press(K::Tab)
        .typewrite("Shomei#Demo1")
        .press(K::Enter);
    assert_eq!(bank.asked(), ["issue jirodt Shomei#Demo1"]);
    for s in [
        "電子証明書の取得が完了しました。",
        "jirodt",
        "発行済",
        "2027年12月01日 08時59分59秒",
        "/home/u/.pki/nssdb（Chromium / Google Chrome）",
        t::CLOSE_BROWSERS,
        "閉じる",
    ] {
        assert!(ui.shows(s), "{s}");
    }
    let (app, _) = ui.state();
    assert!(matches!(app.screen, Screen::Result(_)));
    assert_eq!(app.focused(), Some(Focus::Button(Action::Close)));
}

#[test]
fn every_refusal_is_told_on_the_auth_screen_with_what_to_do() {
    // What is tested, what the bank says, what the screen must show.
    type Case = (&'static str, fn() -> Fail, String);
    let cases: Vec<Case> = vec![
        (
            "wrong password, locked or stopped",
            || Fail::Refused(t::WRONG_PASSWORD.into()),
            t::WRONG_PASSWORD.into(),
        ),
        (
            "発行済",
            || Fail::Refused(t::ALREADY_ISSUED.into()),
            t::ALREADY_ISSUED.into(),
        ),
        (
            "更新可 elsewhere",
            || Fail::Refused(t::USE_RENEWAL.into()),
            t::USE_RENEWAL.into(),
        ),
        (
            "server unreachable",
            || Fail::Network(t::unreachable("connection refused")),
            t::unreachable("connection refused"),
        ),
        (
            "server busy",
            || Fail::Network(t::BUSY.into()),
            t::BUSY.into(),
        ),
        (
            "store not writable",
            || {
                Fail::Local(t::store_not_writable(
                    "/home/u/.pki/nssdb",
                    "Permission denied",
                ))
            },
            t::store_not_writable("/home/u/.pki/nssdb", "Permission denied"),
        ),
    ];
    for (case, fail, message) in cases {
        let bank = Fake::new(vec![], Box::new(move || Err(fail())));
        let mut ui = ui(bank.clone(), true);
        ui.press(K::Enter);
        ui.typewrite("jirodt")
            .press(K::Tab)
            .typewrite("x")
            .press(K::Enter);
        assert_eq!(bank.asked(), ["issue jirodt x"], "{case}");
        assert!(ui.shows(&message), "{case}: the message is on the screen");
        assert!(ui.shows("証明書取得認証"), "{case}");
        let (app, _) = ui.state();
        match &app.screen {
            Screen::Auth {
                login_id, password, ..
            } => {
                assert_eq!(login_id, "jirodt", "{case}: the ID stays");
                assert!(password.is_empty(), "{case}: the password is not kept");
            }
            other => panic!("{case}: {other:?}"),
        }
        assert_eq!(app.focused(), Some(Focus::Field(Field::LoginId)), "{case}");
    }
}

#[test]
fn a_login_id_that_is_not_half_width_is_refused_before_asking_the_bank() {
    let bank = Fake::new(vec![], Box::new(outcome));
    let mut ui = ui(bank.clone(), true);
    ui.press(K::Enter);
    ui.typewrite("じろう")
        .press(K::Tab)
        .typewrite("x")
        .press(K::Enter);
    assert!(ui.shows(t::BAD_LOGIN_ID));
    // Enter in the ID field presses 認証して発行: no password yet.
    let mut ui = super::tests::ui(bank.clone(), true);
    ui.press(K::Enter).typewrite("jirodt").press(K::Enter);
    assert!(ui.shows(t::EMPTY_PASSWORD));
    assert!(bank.asked().is_empty());
}

#[test]
fn tab_reaches_abort_and_enter_presses_it() {
    let bank = Fake::new(vec![], Box::new(outcome));
    let mut ui = ui(bank.clone(), true);
    ui.press(K::Enter);
    ui.press(K::Tab).press(K::Tab).press(K::Tab).press(K::Enter);
    assert!(ui.shows("電子証明書を発行します。「証明書発行」を押してください。"));
    assert!(bank.asked().is_empty());
}

#[test]
fn a_renewable_certificate_is_listed_and_renewed_with_enter() {
    let bank = Fake::new(tarodt_renewable(), Box::new(outcome));
    let mut ui = ui(bank.clone(), true);
    for s in [
        "tarodt",
        "更新可",
        "2026年12月20日 08時59分59秒",
        "証明書更新",
        "更新可の電子証明書があります。「証明書更新」を押すと、新しい電子証明書に更新します。",
    ] {
        assert!(ui.shows(s), "{s}");
    }
    ui.press(K::Enter);
    assert_eq!(bank.asked(), ["renew 0a1b"]);
    assert!(ui.shows("電子証明書の取得が完了しました。"));
    assert!(ui.shows("tarodt（旧証明書、シリアル 0a、有効期限 2026年12月20日 08時59分59秒）を /home/u/.pki/nssdb から削除しました"));
}

#[test]
fn a_failed_renewal_is_told_on_the_certificate_screen() {
    let bank = Fake::new(
        tarodt_renewable(),
        Box::new(|| Err(Fail::Refused(t::NOT_RENEWABLE.into()))),
    );
    let mut ui = ui(bank, true);
    ui.press(K::Enter);
    assert!(ui.shows(t::NOT_RENEWABLE));
    assert!(ui.shows("証明書取得"));
}

#[test]
fn when_the_stores_cannot_be_read_the_screen_says_so() {
    let bank = Arc::new(Fake {
        found: Err(t::unreachable("connection refused")),
        answer: Box::new(outcome),
        asked: Mutex::new(Vec::new()),
    });
    let mut ui = ui(bank, true);
    assert!(ui.shows(&t::unreachable("connection refused")));
    assert!(ui.shows("このパソコンの電子証明書の状態を確認できませんでした。"));
    let no_config = ui_no_bank();
    assert!(
        matches!(no_config.screen, Screen::Top { error: Some(ref e), .. } if e.contains("設定"))
    );
}

fn ui_no_bank() -> App {
    let bank = Arc::new(NoBank(t::config_problem("shomei-cert.toml")));
    let mut ui = ui(bank, true);
    assert!(ui.shows(&t::config_problem("shomei-cert.toml")));
    ui.state().0
}

/// The focus of every screen, on the app's state: where it opens, Tab
/// forward, Shift+Tab back, and Enter from a field presses the default.
#[test]
fn each_screen_opens_with_the_focus_where_the_keyboard_rules_say() {
    let dir = tempfile::tempdir().unwrap();
    let bank: Arc<dyn Bank> = Fake::new(vec![], Box::new(outcome));
    let (mut app, _) = App::new(bank, false, places(dir.path()));
    use Focus::{Button as B, Field as F};
    let expect = [
        (Screen::Welcome, vec![B(Action::Next), B(Action::Cancel)], 0),
        (
            Screen::Folder { path: "/x".into() },
            vec![F(Field::Folder), B(Action::Next), B(Action::Cancel)],
            0,
        ),
        (
            Screen::Confirm {
                path: "/x".into(),
                error: None,
                busy: false,
            },
            vec![B(Action::Install), B(Action::Cancel)],
            0,
        ),
        (Screen::Finished, vec![B(Action::Finish)], 0),
        (
            Screen::Top {
                found: Some(vec![]),
                error: None,
            },
            vec![B(Action::Issue), B(Action::Close)],
            0,
        ),
        (
            Screen::Top {
                found: Some(tarodt_renewable()),
                error: None,
            },
            vec![B(Action::Issue), B(Action::Renew), B(Action::Close)],
            1,
        ),
        (
            Screen::Auth {
                login_id: String::new(),
                password: String::new(),
                error: None,
            },
            vec![
                F(Field::LoginId),
                F(Field::Password),
                B(Action::Authenticate),
                B(Action::Abort),
            ],
            0,
        ),
        (
            Screen::Working {
                step: Step::Obtain,
                renewal: false,
            },
            vec![],
            0,
        ),
        (
            Screen::Result(outcome().unwrap()),
            vec![B(Action::Close)],
            0,
        ),
    ];
    for (screen, order, first) in expect {
        let name = screen.name();
        let _ = app.open(screen);
        assert_eq!(app.focusables(), order, "{name}");
        assert_eq!(
            app.focus, first,
            "{name}: opens on its first field, else its default button"
        );
        let n = order.len();
        if n == 0 {
            let _ = app.update(Message::Key(Key::Tab));
            let _ = app.update(Message::Key(Key::Enter));
            assert_eq!(app.screen.name(), name, "no keys on 処理中");
            continue;
        }
        for i in 1..=n {
            let _ = app.update(Message::Key(Key::Tab));
            assert_eq!(app.focus, (first + i) % n, "{name}: Tab moves forward");
        }
        let _ = app.update(Message::Key(Key::BackTab));
        assert_eq!(
            app.focus,
            (first + n - 1) % n,
            "{name}: Shift+Tab moves back"
        );
    }
}

/// The certificate list arrives after the person has moved the focus: it
/// stays where they put it (Tab to 閉じる, then Enter closes, found under
/// wine where the list came late); a focus nobody moved goes to the new
/// default (証明書更新 when the list brings it).
#[test]
fn a_late_certificate_list_keeps_a_focus_the_person_moved() {
    let dir = tempfile::tempdir().unwrap();
    let bank: Arc<dyn Bank> = Fake::new(vec![], Box::new(outcome));
    let (mut app, _) = App::new(bank, false, places(dir.path()));
    let top = || Screen::Top {
        found: None,
        error: None,
    };
    let _ = app.open(top());
    let _ = app.update(Message::Key(Key::Tab));
    assert_eq!(app.focused(), Some(Focus::Button(Action::Close)));
    let _ = app.update(Message::Surveyed(Ok(vec![])));
    assert_eq!(
        app.focused(),
        Some(Focus::Button(Action::Close)),
        "moved: kept"
    );

    let _ = app.open(top());
    assert_eq!(app.focused(), Some(Focus::Button(Action::Issue)));
    let _ = app.update(Message::Surveyed(Ok(tarodt_renewable())));
    assert_eq!(
        app.focused(),
        Some(Focus::Button(Action::Renew)),
        "not moved: the new default"
    );
}

/// Every screen drawn by iced's simulator says what the guide's screen says.
#[test]
fn every_screen_draws_its_words() {
    let dir = tempfile::tempdir().unwrap();
    let bank: Arc<dyn Bank> = Fake::new(vec![], Box::new(outcome));
    let (mut app, _) = App::new(bank, false, places(dir.path()));
    let screens = [
        (
            Screen::Welcome,
            vec![
                "証明書発行アプリ セットアップへようこそ",
                "次へ",
                "キャンセル",
            ],
        ),
        (
            Screen::Folder {
                path: "/home/u/x".into(),
            },
            vec!["インストール先フォルダーの選択", "/home/u/x"],
        ),
        (
            Screen::Confirm {
                path: "/home/u/x".into(),
                error: None,
                busy: false,
            },
            vec!["インストール確認", "インストール"],
        ),
        (
            Screen::Confirm {
                path: "/home/u/x".into(),
                error: None,
                busy: true,
            },
            vec!["インストールしています。しばらくお待ちください…"],
        ),
        (Screen::Finished, vec!["セットアップ完了", "完了"]),
        (
            Screen::Top {
                found: None,
                error: None,
            },
            vec!["このパソコンの電子証明書を確認しています…", "証明書発行"],
        ),
        (
            Screen::Auth {
                login_id: "jirodt".into(),
                password: String::new(),
                error: None,
            },
            vec!["ログインID", "ログインパスワード", "認証して発行", "中断"],
        ),
        (
            Screen::Working {
                step: Step::Obtain,
                renewal: false,
            },
            vec!["処理中", "現在の処理: 証明書取得", "個人認証", "取得完了"],
        ),
        (
            Screen::Result(outcome().unwrap()),
            vec![
                "結果",
                "証明書状態",
                "証明書有効期限",
                "保存先",
                "古い証明書",
                t::CLOSE_BROWSERS,
            ],
        ),
    ];
    for (screen, words) in screens {
        let name = screen.name();
        let _ = app.open(screen);
        let mut ui = iced_test::simulator(app.view());
        for w in words {
            assert!(ui.find(w).is_ok(), "{name}: {w}");
        }
        assert!(
            ui.find("これはどの画面にもない").is_err(),
            "the finder can fail"
        );
    }
}
