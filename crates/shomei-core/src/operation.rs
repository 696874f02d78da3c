//! Every operation the product writes to 操作履歴, named once: its
//! identifier here, its label in the rows (the guide's words), and whether
//! 操作履歴照会 (BSSK011) offers it as a filter choice.

/// Writes the enum and its table from one list (after rustls'
/// `enum_builder!`): a variant's label and filter flag sit beside it.
macro_rules! operations {
    ($( $(#[$doc:meta])* $variant:ident => $label:literal, filter: $filter:literal; )*) => {
        /// An operation recorded in 操作履歴.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Operation {
            $(
                #[doc = concat!("「", $label, "」 in 操作履歴.")]
                #[doc = ""]
                $(#[$doc])*
                $variant,
            )*
        }

        impl Operation {
            /// Every operation, in the order of the table.
            pub const ALL: &'static [Operation] = &[$(Operation::$variant,)*];

            /// The label written in 操作履歴 rows and shown on screens.
            pub const fn label(self) -> &'static str {
                match self {
                    $( Operation::$variant => $label, )*
                }
            }

            /// Is it offered as a choice of BSSK011's operation filter?
            pub const fn in_filter(self) -> bool {
                match self {
                    $( Operation::$variant => $filter, )*
                }
            }
        }
    };
}

operations! {
    /// ログイン (login password or certificate).
    Login => "ログイン", filter: true;
    Logout => "ログアウト", filter: true;
    SessionTimeout => "セッションタイムアウト", filter: true;
    /// A session ended by the server (its certificate revoked).
    SessionEnded => "セッション終了", filter: true;
    CertificateIssue => "証明書発行", filter: true;
    CertificateRenewal => "証明書更新", filter: true;
    CertificateRevocation => "証明書失効", filter: true;
    PasswordChange => "パスワード変更", filter: true;
    UserCreate => "利用者登録", filter: true;
    UserUpdate => "利用者変更", filter: true;
    UserDelete => "利用者削除", filter: true;
    /// 利用者停止・解除 (BRSK021).
    ServiceState => "利用者停止・解除", filter: true;
    CompanyContact => "企業情報変更", filter: true;
    /// The login password closed for a while by failed checks.
    LoginTemporarilyLocked => "ログインパスワード利用一時停止", filter: true;
    /// The login password closed by failed checks until the bank opens it.
    LoginStopped => "ログインパスワード利用停止", filter: true;
    /// The 確認用パスワード closed by failed checks.
    ConfirmStopped => "確認用パスワード利用停止", filter: true;
    /// The bank opened the company (operator).
    CompanyCreate => "企業登録", filter: true;
    /// The bank changed the contracted services (operator).
    CompanyServiceChange => "契約サービス変更", filter: true;
    /// The bank lifted a user's password locks (operator).
    Unlock => "ロック解除", filter: true;
    /// The bank reset a user's passwords (operator).
    PasswordReset => "パスワード初期化", filter: true;
    DemoData => "デモデータ作成", filter: true;
    /// An operator opened a console session (the bank's own chain).
    ConsoleLogin => "コンソールログイン", filter: false;
    /// An operator's stopped password opened again (the bank's own chain).
    OperatorUnlock => "オペレーターパスワード停止解除", filter: false;
    /// An operator added (the bank's own chain).
    OperatorAdd => "オペレーター登録", filter: false;
    /// An operator's certificate revoked (the bank's own chain).
    OperatorRevoke => "オペレーター失効", filter: false;
    /// An operator without the ヘルプデスク role tried the help desk's
    /// screens (the bank's own chain).
    HelpDesk => "ヘルプデスク業務", filter: false;
    /// The bank closed a company (解約): its users stopped, its
    /// certificates revoked.
    CompanyClose => "企業解約", filter: true;
    /// A change submitted for four-eyes approval (the bank's own chain).
    ApprovalSubmit => "承認申請", filter: false;
    /// An operator approved a request (the bank's own chain).
    ApprovalApprove => "承認", filter: false;
    /// An operator rejected a request, ending it (the bank's own chain).
    ApprovalReject => "否認", filter: false;
    /// A request ran out of time unapproved (the bank's own chain).
    ApprovalExpire => "承認期限切れ", filter: false;
    /// An approved change committed (the bank's own chain).
    ApprovalCommit => "承認済み変更の実行", filter: false;
    /// A change done at once without approval, on the server's shell, with
    /// its reason (the bank's own chain).
    BreakGlass => "緊急実行（承認省略）", filter: false;
    /// An operator's roles changed (the bank's own chain).
    OperatorRoleChange => "オペレーター役割変更", filter: false;
    /// An approval rule changed (the bank's own chain).
    ApprovalRuleChange => "承認ルール変更", filter: false;
    /// An operator without the 監査 role tried the 監査's screens (the
    /// bank's own chain).
    Audit => "監査業務", filter: false;
    /// The 監査 downloaded 操作履歴 as CSV (the bank's own chain).
    AuditExport => "操作履歴ダウンロード", filter: false;
    /// The 監査 checked the 操作履歴 hash chains (the bank's own chain).
    AuditVerify => "操作履歴検証", filter: false;
}

impl Operation {
    /// The operation of a label, as rows and the filter give it.
    pub fn from_label(label: &str) -> Option<Operation> {
        Operation::ALL.iter().copied().find(|o| o.label() == label)
    }

    /// The labels BSSK011 offers as filter choices, in the table's order.
    pub fn filter_labels() -> impl Iterator<Item = &'static str> {
        Operation::ALL
            .iter()
            .filter(|o| o.in_filter())
            .map(|o| o.label())
    }
}

/// How an operation ended, as 操作履歴 writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// 成功.
    Succeeded,
    /// 失敗: refused or failed; the row's detail says why.
    Failed,
}

impl Outcome {
    /// 成功 or 失敗, as rows and the filter give it.
    pub const fn label(self) -> &'static str {
        match self {
            Outcome::Succeeded => "成功",
            Outcome::Failed => "失敗",
        }
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_and_read_back() {
        for (i, o) in Operation::ALL.iter().enumerate() {
            assert_eq!(Operation::from_label(o.label()), Some(*o));
            assert!(
                !Operation::ALL[i + 1..]
                    .iter()
                    .any(|p| p.label() == o.label()),
                "{o:?}"
            );
        }
        assert_eq!(Operation::from_label("ログイン "), None);
    }

    #[test]
    fn bssk011_offers_every_operation_in_the_table_order() {
        let offered: Vec<_> = Operation::filter_labels().collect();
        assert_eq!(
            offered,
            [
                "ログイン",
                "ログアウト",
                "セッションタイムアウト",
                "セッション終了",
                "証明書発行",
                "証明書更新",
                "証明書失効",
                "パスワード変更",
                "利用者登録",
                "利用者変更",
                "利用者削除",
                "利用者停止・解除",
                "企業情報変更",
                "ログインパスワード利用一時停止",
                "ログインパスワード利用停止",
                "確認用パスワード利用停止",
                "企業登録",
                "契約サービス変更",
                "ロック解除",
                "パスワード初期化",
                "デモデータ作成",
                "企業解約",
            ]
        );
    }

    #[test]
    fn a_closed_password_is_recorded_under_its_state_label() {
        use crate::ServiceState;
        for (state, op) in [
            (
                ServiceState::LoginTemporarilyLocked,
                Operation::LoginTemporarilyLocked,
            ),
            (ServiceState::LoginStopped, Operation::LoginStopped),
            (ServiceState::ConfirmStopped, Operation::ConfirmStopped),
        ] {
            assert_eq!(state.label(), op.label());
            assert_eq!(state.closed_operation(), Some(op));
        }
        assert_eq!(ServiceState::Available.closed_operation(), None);
    }
}
