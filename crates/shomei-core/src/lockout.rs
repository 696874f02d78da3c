//! The two failure counters of PRODUCT.md §5 and the service states they lead to.

use time::{Duration, OffsetDateTime};

/// Numbers and duration of the lockout rules. Configurable; defaults are the spec's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LockoutPolicy {
    /// Consecutive login-password failures that start a temporary stop.
    pub login_temp_lock_after: u32,
    /// How long the temporary stop lasts.
    pub login_temp_lock_for: Duration,
    /// Consecutive login-password failures that stop login until unlocked.
    pub login_stop_after: u32,
    /// Consecutive confirmation-password failures that stop it until unlocked.
    pub confirm_stop_after: u32,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            login_temp_lock_after: 3,
            login_temp_lock_for: Duration::minutes(30),
            login_stop_after: 6,
            confirm_stop_after: 6,
        }
    }
}

/// A user's stored counters and flags. The service loads them, asks these
/// methods what happens, and stores the result in the same transaction as the
/// 操作履歴 row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecurityCounters {
    /// Login-password failures in a row (reset by a successful login).
    pub login_failures: u32,
    /// Until when the login password is temporarily stopped; past it the
    /// login gate opens again by itself.
    pub login_locked_until: Option<OffsetDateTime>,
    /// ログインパスワード利用停止: closed until the bank or an administrator
    /// releases it.
    pub login_stopped: bool,
    /// 確認用パスワード failures in a row (reset by a correct one).
    pub confirm_failures: u32,
    /// 確認用パスワード利用停止: closed until released.
    pub confirm_stopped: bool,
    /// 利用停止 set by an administrator in 利用者停止・解除.
    pub admin_stopped: bool,
}

/// Why a login attempt is refused before the password is even looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginGate {
    /// The password may be checked.
    Open,
    /// 利用停止 by an administrator.
    AdminStopped,
    /// ログインパスワード利用停止 after too many failures.
    PasswordStopped,
    /// Temporarily stopped after failures, until `until`.
    TemporarilyLocked {
        /// When the lock ends.
        until: OffsetDateTime,
    },
}

/// What a failure did to the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureOutcome {
    /// One more failure, no lock yet; `failures` in a row so far.
    Counted {
        /// Failures in a row, this one included.
        failures: u32,
    },
    /// This failure closed the temporary lock, until `until`.
    TemporarilyLocked {
        /// When the lock ends.
        until: OffsetDateTime,
    },
    /// This failure stopped the password until it is released.
    Stopped,
}

/// The service states shown by 利用者停止・解除.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceState {
    /// 利用可能: nothing is closed.
    Available,
    /// 利用停止 by an administrator.
    AdminStopped,
    /// ログインパスワード利用一時停止, until its time passes.
    LoginTemporarilyLocked,
    /// ログインパスワード利用停止, until released.
    LoginStopped,
    /// 確認用パスワード利用停止, until released.
    ConfirmStopped,
}

impl ServiceState {
    /// The state's name on 利用者停止・解除 and in the user lists.
    pub fn label(self) -> &'static str {
        match self {
            ServiceState::Available => "利用可能",
            ServiceState::AdminStopped => "利用停止",
            ServiceState::LoginTemporarilyLocked => "ログインパスワード利用一時停止",
            ServiceState::LoginStopped => "ログインパスワード利用停止",
            ServiceState::ConfirmStopped => "確認用パスワード利用停止",
        }
    }

    /// The operation 操作履歴 records when a password closes into this
    /// state (none for the states no failed check leads to).
    pub fn closed_operation(self) -> Option<crate::Operation> {
        use crate::Operation;
        match self {
            ServiceState::LoginTemporarilyLocked => Some(Operation::LoginTemporarilyLocked),
            ServiceState::LoginStopped => Some(Operation::LoginStopped),
            ServiceState::ConfirmStopped => Some(Operation::ConfirmStopped),
            ServiceState::Available | ServiceState::AdminStopped => None,
        }
    }
}

impl SecurityCounters {
    /// Releases every lock and stop: the state 利用可能.
    pub fn release_all(&mut self) {
        self.login_failures = 0;
        self.login_locked_until = None;
        self.login_stopped = false;
        self.confirm_failures = 0;
        self.confirm_stopped = false;
        self.admin_stopped = false;
    }

    /// Whether a login password may be checked at `now`, and if not, why:
    /// the administrator's stop first, then the password's stop, then a
    /// temporary lock still running.
    pub fn login_gate(&self, now: OffsetDateTime) -> LoginGate {
        if self.admin_stopped {
            LoginGate::AdminStopped
        } else if self.login_stopped {
            LoginGate::PasswordStopped
        } else if let Some(until) = self.login_locked_until.filter(|u| now < *u) {
            LoginGate::TemporarilyLocked { until }
        } else {
            LoginGate::Open
        }
    }

    /// Counts a wrong login password: at `login_temp_lock_after` failures in
    /// a row the temporary lock closes, at `login_stop_after` the password is
    /// stopped.
    pub fn on_login_failure(&mut self, now: OffsetDateTime, p: &LockoutPolicy) -> FailureOutcome {
        self.login_failures = self.login_failures.saturating_add(1);
        if self.login_failures >= p.login_stop_after {
            self.login_stopped = true;
            self.login_locked_until = None;
            FailureOutcome::Stopped
        } else if self.login_failures == p.login_temp_lock_after {
            let until = now + p.login_temp_lock_for;
            self.login_locked_until = Some(until);
            FailureOutcome::TemporarilyLocked { until }
        } else {
            FailureOutcome::Counted {
                failures: self.login_failures,
            }
        }
    }

    /// A correct login password: the failures in a row start again from 0
    /// and a temporary lock ends (a stop does not: it is checked before).
    pub fn on_login_success(&mut self) {
        self.login_failures = 0;
        self.login_locked_until = None;
    }

    /// How many login-password checks may still be made before the next
    /// lock closes (0 while a gate is closed). Checks in flight count
    /// against this, so that however many attempts arrive at once, no more
    /// passwords are checked than the lockout allows.
    pub fn login_checks_left(&self, now: OffsetDateTime, p: &LockoutPolicy) -> u32 {
        if self.login_gate(now) != LoginGate::Open {
            return 0;
        }
        let next = if self.login_failures < p.login_temp_lock_after {
            p.login_temp_lock_after.min(p.login_stop_after)
        } else {
            p.login_stop_after
        };
        next.saturating_sub(self.login_failures)
    }

    /// As `login_checks_left`, for the 確認用パスワード.
    pub fn confirm_checks_left(&self, p: &LockoutPolicy) -> u32 {
        if self.confirm_stopped {
            return 0;
        }
        p.confirm_stop_after.saturating_sub(self.confirm_failures)
    }

    /// May an operation that asks for the 確認用パスワード go ahead?
    pub fn confirm_open(&self) -> bool {
        !self.confirm_stopped
    }

    /// Counts a wrong 確認用パスワード: at `confirm_stop_after` failures in a
    /// row it is stopped.
    pub fn on_confirm_failure(&mut self, p: &LockoutPolicy) -> FailureOutcome {
        self.confirm_failures = self.confirm_failures.saturating_add(1);
        if self.confirm_failures >= p.confirm_stop_after {
            self.confirm_stopped = true;
            FailureOutcome::Stopped
        } else {
            FailureOutcome::Counted {
                failures: self.confirm_failures,
            }
        }
    }

    /// A correct 確認用パスワード: its failures start again from 0.
    pub fn on_confirm_success(&mut self) {
        self.confirm_failures = 0;
    }

    /// Every service state that applies now; `Available` when none does.
    pub fn service_states(&self, now: OffsetDateTime) -> Vec<ServiceState> {
        let mut v = Vec::new();
        if self.admin_stopped {
            v.push(ServiceState::AdminStopped);
        }
        if self.login_stopped {
            v.push(ServiceState::LoginStopped);
        } else if self.login_locked_until.is_some_and(|u| now < u) {
            v.push(ServiceState::LoginTemporarilyLocked);
        }
        if self.confirm_stopped {
            v.push(ServiceState::ConfirmStopped);
        }
        if v.is_empty() {
            v.push(ServiceState::Available);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn three_failures_lock_for_thirty_minutes_and_six_stop() {
        let p = LockoutPolicy::default();
        let t0 = datetime!(2026-01-01 09:00 UTC);
        let mut c = SecurityCounters::default();
        assert_eq!(
            c.on_login_failure(t0, &p),
            FailureOutcome::Counted { failures: 1 }
        );
        assert_eq!(
            c.on_login_failure(t0, &p),
            FailureOutcome::Counted { failures: 2 }
        );
        let until = t0 + Duration::minutes(30);
        assert_eq!(
            c.on_login_failure(t0, &p),
            FailureOutcome::TemporarilyLocked { until }
        );
        assert_eq!(
            c.login_gate(t0 + Duration::minutes(29)),
            LoginGate::TemporarilyLocked { until }
        );
        assert_eq!(
            c.service_states(t0),
            vec![ServiceState::LoginTemporarilyLocked]
        );
        let later = t0 + Duration::minutes(30);
        assert_eq!(c.login_gate(later), LoginGate::Open);
        c.on_login_failure(later, &p);
        c.on_login_failure(later, &p);
        assert_eq!(c.on_login_failure(later, &p), FailureOutcome::Stopped);
        assert_eq!(
            c.login_gate(later + Duration::days(1)),
            LoginGate::PasswordStopped
        );
        assert_eq!(c.service_states(later), vec![ServiceState::LoginStopped]);
    }

    #[test]
    fn a_success_resets_its_own_counter_only() {
        let p = LockoutPolicy::default();
        let t0 = datetime!(2026-01-01 09:00 UTC);
        let mut c = SecurityCounters::default();
        c.on_login_failure(t0, &p);
        c.on_login_failure(t0, &p);
        c.on_confirm_failure(&p);
        c.on_login_success();
        assert_eq!(c.login_failures, 0);
        assert_eq!(c.confirm_failures, 1);
        c.on_confirm_success();
        assert_eq!(c.confirm_failures, 0);
    }

    #[test]
    fn six_confirmation_failures_stop_the_confirmation_password_but_not_login() {
        let p = LockoutPolicy::default();
        let now = datetime!(2026-01-01 09:00 UTC);
        let mut c = SecurityCounters::default();
        for i in 1..6 {
            assert_eq!(
                c.on_confirm_failure(&p),
                FailureOutcome::Counted { failures: i }
            );
            assert!(c.confirm_open());
        }
        assert_eq!(c.on_confirm_failure(&p), FailureOutcome::Stopped);
        assert!(!c.confirm_open());
        assert_eq!(c.login_gate(now), LoginGate::Open);
        assert_eq!(c.service_states(now), vec![ServiceState::ConfirmStopped]);
    }

    #[test]
    fn checks_left_count_down_to_each_lock_and_are_zero_while_closed() {
        let p = LockoutPolicy::default();
        let t0 = datetime!(2026-01-01 09:00 UTC);
        let mut c = SecurityCounters::default();
        assert_eq!(c.login_checks_left(t0, &p), 3);
        c.on_login_failure(t0, &p);
        assert_eq!(c.login_checks_left(t0, &p), 2);
        c.on_login_failure(t0, &p);
        c.on_login_failure(t0, &p);
        assert_eq!(c.login_checks_left(t0, &p), 0, "temporarily locked");
        let later = t0 + Duration::minutes(30);
        assert_eq!(
            c.login_checks_left(later, &p),
            3,
            "three more until the stop"
        );
        for _ in 0..3 {
            c.on_login_failure(later, &p);
        }
        assert_eq!(c.login_checks_left(later + Duration::days(9), &p), 0);
        assert_eq!(c.confirm_checks_left(&p), 6);
        c.on_confirm_failure(&p);
        assert_eq!(c.confirm_checks_left(&p), 5);
        c.confirm_stopped = true;
        assert_eq!(c.confirm_checks_left(&p), 0);
        let admin = SecurityCounters {
            admin_stopped: true,
            ..Default::default()
        };
        assert_eq!(admin.login_checks_left(t0, &p), 0);
    }

    #[test]
    fn numbers_are_configurable() {
        let p = LockoutPolicy {
            login_temp_lock_after: 2,
            login_stop_after: 4,
            confirm_stop_after: 2,
            ..Default::default()
        };
        let now = datetime!(2026-01-01 09:00 UTC);
        let mut c = SecurityCounters::default();
        c.on_login_failure(now, &p);
        assert!(matches!(
            c.on_login_failure(now, &p),
            FailureOutcome::TemporarilyLocked { .. }
        ));
        c.on_confirm_failure(&p);
        assert_eq!(c.on_confirm_failure(&p), FailureOutcome::Stopped);
    }

    /// The labels are the screens' and the 操作履歴's words for each state.
    #[test]
    fn each_state_has_its_label() {
        let labels = [
            (ServiceState::Available, "利用可能"),
            (ServiceState::AdminStopped, "利用停止"),
            (
                ServiceState::LoginTemporarilyLocked,
                "ログインパスワード利用一時停止",
            ),
            (ServiceState::LoginStopped, "ログインパスワード利用停止"),
            (ServiceState::ConfirmStopped, "確認用パスワード利用停止"),
        ];
        for (s, label) in labels {
            assert_eq!(s.label(), label, "{s:?}");
        }
    }

    #[test]
    fn release_all_clears_every_counter_lock_and_stop() {
        let p = LockoutPolicy::default();
        let t0 = datetime!(2026-01-01 09:00 UTC);
        let mut c = SecurityCounters {
            admin_stopped: true,
            confirm_stopped: true,
            confirm_failures: 6,
            ..Default::default()
        };
        for _ in 0..3 {
            c.on_login_failure(t0, &p);
        }
        assert!(c.login_locked_until.is_some());
        c.login_stopped = true;
        c.release_all();
        assert_eq!(c, SecurityCounters::default());
        assert_eq!(c.service_states(t0), vec![ServiceState::Available]);
    }

    /// The temporary stop ends at `until` itself, in the state list as at
    /// the login gate; several states show together.
    #[test]
    fn states_list_every_lock_and_the_temporary_one_ends_at_its_time() {
        let p = LockoutPolicy::default();
        let t0 = datetime!(2026-01-01 09:00 UTC);
        let mut c = SecurityCounters::default();
        for _ in 0..3 {
            c.on_login_failure(t0, &p);
        }
        let until = t0 + Duration::minutes(30);
        let before = until - Duration::seconds(1);
        assert_eq!(
            c.service_states(before),
            vec![ServiceState::LoginTemporarilyLocked]
        );
        assert_eq!(c.service_states(until), vec![ServiceState::Available]);
        assert_eq!(c.login_gate(until), LoginGate::Open);
        c.admin_stopped = true;
        c.confirm_stopped = true;
        assert_eq!(
            c.service_states(before),
            vec![
                ServiceState::AdminStopped,
                ServiceState::LoginTemporarilyLocked,
                ServiceState::ConfirmStopped
            ]
        );
    }

    #[test]
    fn an_administrator_stop_closes_login_whatever_the_counters() {
        let c = SecurityCounters {
            admin_stopped: true,
            ..Default::default()
        };
        assert_eq!(
            c.login_gate(datetime!(2026-01-01 09:00 UTC)),
            LoginGate::AdminStopped
        );
    }
}
