//! `shomei`: the bank's server and its operator CLI. This file parses the
//! command line and dispatches; each command group is a module of `cmd`.

mod cmd;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "shomei",
    version,
    about = "Shomei: business internet-banking portal with client-certificate login",
    after_help = "The dangerous changes (opening or closing a company, registering a マスター, resetting a マスター's passwords, adding an operator or changing their roles, changing the approval rules) are submitted for four-eyes approval: operators approve them in the operator console, never on this shell (whoever holds the shell could pose as any operator). --break-glass --reason \"…\" commits one at once, with a prominent 操作履歴 row and a mail to every 運用管理者.\n\nExit status: 0 done or submitted; 1 refused or failed (nothing changed); 2 usage error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the portal over HTTPS.
    Serve(cmd::serve::ServeArgs),
    /// Certificate tasks of the bank operator.
    Cert {
        #[command(subcommand)]
        command: cmd::cert::CertCommand,
    },
    /// CRL tasks of the bank operator.
    Crl {
        #[command(subcommand)]
        command: cmd::crl::CrlCommand,
    },
    /// Company tasks of the bank operator.
    Company {
        #[command(subcommand)]
        command: cmd::company::CompanyCommand,
    },
    /// User tasks of the bank operator.
    User {
        #[command(subcommand)]
        command: cmd::user::UserCommand,
    },
    /// The operators of the operator console.
    Operator {
        #[command(subcommand)]
        command: cmd::operator::OperatorCommand,
    },
    /// Four-eyes approval requests: list and show the queue, change a rule
    /// (approving and rejecting are done in the operator console only).
    Approval {
        #[command(subcommand)]
        command: cmd::approval::ApprovalCommand,
    },
    /// 操作履歴 tasks.
    Audit {
        #[command(subcommand)]
        command: cmd::audit::AuditCommand,
    },
    /// Copy the data directory (the database, consistently, while the
    /// server runs, and the CA's files) into a new directory, and check the
    /// copy. The copy is itself a data directory: to restore, stop the
    /// server and start it with --data-dir on the copy.
    Backup(cmd::backup::BackupArgs),
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
    let cli = Cli::parse();
    let r = match cli.command {
        Command::Serve(args) => cmd::serve::serve(args).await,
        Command::Cert { command } => cmd::cert::run(command).await,
        Command::Crl { command } => cmd::crl::run(command).await,
        Command::Company { command } => cmd::company::run(command).await,
        Command::User { command } => cmd::user::run(command).await,
        Command::Operator { command } => cmd::operator::operator_task(command).await,
        Command::Approval { command } => cmd::approval::approval_task(command).await,
        Command::Audit { command } => cmd::audit::run(command).await,
        Command::Backup(args) => cmd::backup::backup(args).await,
    };
    if let Err(e) = r {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
