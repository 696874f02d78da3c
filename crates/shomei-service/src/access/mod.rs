//! Access: who may come in and how — login, the one password check,
//! password hashing and change, the logged-in sessions, and the
//! per-address throttle.

pub(crate) mod check;
pub(crate) mod login;
pub(crate) mod password;
pub(crate) mod password_change;
pub(crate) mod sessions;
pub(crate) mod throttle;
