//! The company's own administration on the portal: its users, stopping and
//! releasing them, its contact information and its 操作履歴.

pub(crate) mod capability;
pub(crate) mod contact;
pub(crate) mod history;
pub(crate) mod stop;
pub(crate) mod users;
