//! The bank's own staff in the operator console: their roles and the names
//! they go by. Who may do what in the console is decided from these.

/// An operator's role (the README's roles table). An operator holds one or
/// more.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OperatorRole {
    /// ヘルプデスク: takes the customers' phone calls (search, state, revoke).
    HelpDesk,
    /// 業務管理者: opens and closes companies, registers their マスター.
    BusinessAdmin,
    /// 監査: reads 操作履歴 of every company and of the operators.
    Auditor,
    /// 運用管理者: the operators, their roles and the approval rules.
    OperationsAdmin,
}

impl OperatorRole {
    /// Every role, in the order of the README's table.
    pub const ALL: [OperatorRole; 4] = [
        OperatorRole::HelpDesk,
        OperatorRole::BusinessAdmin,
        OperatorRole::Auditor,
        OperatorRole::OperationsAdmin,
    ];

    /// The label on the console's screens.
    pub fn label(self) -> &'static str {
        match self {
            OperatorRole::HelpDesk => "ヘルプデスク",
            OperatorRole::BusinessAdmin => "業務管理者",
            OperatorRole::Auditor => "監査",
            OperatorRole::OperationsAdmin => "運用管理者",
        }
    }

    /// The stable name stored in the database and given to the CLI.
    pub fn code(self) -> &'static str {
        match self {
            OperatorRole::HelpDesk => "helpdesk",
            OperatorRole::BusinessAdmin => "business-admin",
            OperatorRole::Auditor => "audit",
            OperatorRole::OperationsAdmin => "operations-admin",
        }
    }

    /// The role of a stored or typed `code`; `None` for anything else.
    pub fn from_code(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == s)
    }
}

/// The roles of one operator: a set, stored as their codes joined by ','.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OperatorRoles(Vec<OperatorRole>);

impl OperatorRoles {
    /// Parses codes separated by ','; duplicates count once. `None` for an
    /// unknown code or no role at all.
    pub fn parse(s: &str) -> Option<Self> {
        let mut roles = Vec::new();
        for part in s.split(',') {
            let r = OperatorRole::from_code(part.trim())?;
            if !roles.contains(&r) {
                roles.push(r);
            }
        }
        roles.sort();
        (!roles.is_empty()).then_some(Self(roles))
    }

    /// The set of `roles`; `None` when it is empty.
    pub fn from_roles(roles: impl IntoIterator<Item = OperatorRole>) -> Option<Self> {
        let codes: Vec<&str> = roles.into_iter().map(OperatorRole::code).collect();
        Self::parse(&codes.join(","))
    }

    /// Whether the operator holds role `r`.
    pub fn has(&self, r: OperatorRole) -> bool {
        self.0.contains(&r)
    }

    /// The roles, in their fixed order.
    pub fn iter(&self) -> impl Iterator<Item = OperatorRole> + '_ {
        self.0.iter().copied()
    }

    /// As stored: the codes joined by ','.
    pub fn codes(&self) -> String {
        self.0
            .iter()
            .map(|r| r.code())
            .collect::<Vec<_>>()
            .join(",")
    }

    /// As shown: the labels joined by '、'.
    pub fn labels(&self) -> String {
        self.0
            .iter()
            .map(|r| r.label())
            .collect::<Vec<_>>()
            .join("、")
    }
}

/// An operator's name: 1–32 half-width letters, digits, '.', '-' or '_'
/// (it is the CN of their certificate and the actor in 操作履歴).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct OperatorName(String);

impl OperatorName {
    /// Checks the form; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = (1..=32).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
        ok.then(|| Self(s.to_owned()))
    }

    /// The name as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// How the operator appears as the actor of a 操作履歴 row.
    pub fn actor(&self) -> String {
        format!("銀行:{}", self.0)
    }
}

impl std::fmt::Display for OperatorName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_as_a_set_of_known_codes() {
        let r = OperatorRoles::parse("audit,helpdesk,audit").unwrap();
        assert_eq!(r.codes(), "helpdesk,audit");
        assert_eq!(r.labels(), "ヘルプデスク、監査");
        assert!(r.has(OperatorRole::Auditor) && !r.has(OperatorRole::BusinessAdmin));
        assert_eq!(OperatorRoles::parse("helpdesk,root"), None);
        assert_eq!(OperatorRoles::parse(""), None);
        for role in OperatorRole::ALL {
            assert_eq!(OperatorRole::from_code(role.code()), Some(role));
        }
    }

    #[test]
    fn operator_names_are_short_and_plain() {
        assert!(OperatorName::parse("sato.k-01_x").is_some());
        for bad in ["", "佐藤", "a b", "a/b", &"x".repeat(33)] {
            assert_eq!(OperatorName::parse(bad), None, "{bad:?}");
        }
        assert_eq!(OperatorName::parse("sato").unwrap().actor(), "銀行:sato");
    }
}
