//! `shomei operator …`: the bank's operators of the operator console, on
//! the server's shell (the first operator is made here).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::{Common, Operator, open_cli, pad, rfc3339};

#[derive(clap::Subcommand)]
pub(crate) enum OperatorCommand {
    /// Add an operator: writes their PKCS#12 (key and operator certificate)
    /// to --out and prints its password and the operator's confirmation
    /// password, each shown this once.
    Add {
        #[command(flatten)]
        common: Common,
        /// The operator's name (their certificate's CN): 1-32 half-width
        /// letters, digits, '.', '-' or '_'.
        #[arg(long)]
        name: String,
        /// helpdesk, business-admin, audit or operations-admin; repeat or
        /// separate by ',' for several.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Where to write the PKCS#12 file (must not exist yet).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        op: Operator,
        #[arg(long)]
        json: bool,
    },
    /// The operators, their roles, state and newest certificate.
    List {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        json: bool,
    },
    /// Revoke an operator: every certificate of theirs is revoked (refused
    /// from the next handshake) and they can no longer open the console.
    Revoke(Named),
    /// Lift an operator's password stopped by wrong passwords in a row.
    Unlock(Named),
}

/// An operator named on the command line, and who acts.
#[derive(clap::Args)]
pub(crate) struct Named {
    #[command(flatten)]
    common: Common,
    #[arg(long)]
    name: String,
    #[command(flatten)]
    op: Operator,
}

pub(crate) async fn operator_task(command: OperatorCommand) -> Result<()> {
    match command {
        OperatorCommand::Add {
            common,
            name,
            roles,
            out,
            op,
            json,
        } => {
            // Refuse before anything is made: the file is never overwritten.
            let mut file = {
                let mut opts = std::fs::OpenOptions::new();
                std::os::unix::fs::OpenOptionsExt::mode(opts.write(true).create_new(true), 0o600);
                opts.open(&out)
                    .with_context(|| format!("cannot create {}", out.display()))?
            };
            let svc = open_cli(&common).await?;
            let added = match svc.add_operator(&name, &roles.join(","), &op.name()).await {
                Ok(a) => a,
                Err(e) => {
                    drop(file);
                    let _ = std::fs::remove_file(&out);
                    return Err(e.into());
                }
            };
            file.write_all(&added.p12)
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write {}", out.display()))?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "name": added.name.as_str(),
                        "roles": added.roles.codes(),
                        "serial": added.serial.to_string(),
                        "not_after": rfc3339(added.not_after),
                        "p12": out.display().to_string(),
                        "p12_password": added.p12_password,
                        "confirm_password": added.confirm_password,
                    })
                );
            } else {
                println!(
                    "operator {} added ({}); certificate {} valid until {}",
                    added.name,
                    added.roles.labels(),
                    added.serial,
                    rfc3339(added.not_after)
                );
                println!("PKCS#12 written to {}", out.display());
                println!("PKCS#12 password:      {}", added.p12_password);
                println!("confirmation password: {}", added.confirm_password);
                println!("Both passwords are shown only now: hand them to the operator.");
            }
            Ok(())
        }
        OperatorCommand::List { common, json } => {
            let svc = open_cli(&common).await?;
            let rows = svc.operator_list().await?;
            let state = |active: bool| if active { "active" } else { "revoked" };
            if json {
                let list: Vec<_> = rows
                    .iter()
                    .map(|r| {
                        serde_json::json!({
                            "name": r.operator.name.as_str(),
                            "roles": r.operator.roles.codes(),
                            "state": state(r.operator.active),
                            "serial": r.newest.as_ref().map(|c| c.serial.to_string()),
                            "not_after": r.newest.as_ref().map(|c| rfc3339(c.not_after)),
                            "created_at": rfc3339(r.operator.created_at),
                            "created_by": r.operator.created_by,
                        })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(list));
                return Ok(());
            }
            println!(
                "{}{}{}certificate",
                pad("name", 16),
                pad("roles", 36),
                pad("state", 9)
            );
            for r in &rows {
                println!(
                    "{}{}{}{}",
                    pad(r.operator.name.as_str(), 16),
                    pad(&r.operator.roles.codes(), 36),
                    pad(state(r.operator.active), 9),
                    r.newest
                        .as_ref()
                        .map(|c| format!("{} until {}", c.serial, rfc3339(c.not_after)))
                        .unwrap_or_default()
                );
            }
            Ok(())
        }
        OperatorCommand::Revoke(Named { common, name, op }) => {
            let svc = open_cli(&common).await?;
            let serials = svc.revoke_operator(&name, &op.name()).await?;
            let list: Vec<String> = serials.iter().map(ToString::to_string).collect();
            println!(
                "operator {name} revoked; certificates revoked: {}",
                if list.is_empty() {
                    "none".into()
                } else {
                    list.join(", ")
                }
            );
            Ok(())
        }
        OperatorCommand::Unlock(Named { common, name, op }) => {
            let svc = open_cli(&common).await?;
            svc.unlock_operator(&name, &op.name()).await?;
            println!("operator {name}: password may be used again");
            Ok(())
        }
    }
}
