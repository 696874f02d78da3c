//! Integration tests: the real server (TLS, database, CA) on a free port,
//! driven over HTTPS. One test binary for the whole crate (see STYLE.md).

mod testkit;

mod attack;
mod authority;
mod company;
mod console;
mod console_approvals;
mod console_audit;
mod console_helpdesk;
mod console_services;
mod device;
mod door;
mod handshake;
mod history;
mod issuance;
mod lockout;
mod metrics;
mod nodes;
mod notices;
mod ocsp;
mod operator;
mod partitions;
mod password;
mod portal;
mod process;
mod profile;
mod readiness;
mod restore;
mod revocation;
mod sessions;
mod shell;
mod snapshot;
mod stop;
mod users;
