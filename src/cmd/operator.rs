//! `shomei operator …`: the bank's operators of the operator console, on
//! the server's shell. The first operator (a 運用管理者) is made here at
//! once, while the database has none; later ones and role changes are
//! submitted for approval in the console (or --break-glass).

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use super::approval::{Approval, Done};
use super::{Common, Operator, open_cli, pad, rfc3339};
use shomei_service::{Applied, ApprovalChange, NewOperator};

#[derive(clap::Subcommand)]
pub(crate) enum OperatorCommand {
    /// Add an operator. With NO operator in the database yet this is the
    /// bootstrap: the first operator, who must hold operations-admin, is
    /// created at once, their PKCS#12 (key and operator certificate) written
    /// to --out and its password and the operator's own password printed,
    /// each shown this once. Afterwards the new operator is submitted for
    /// approval in the operator console, where the approving operator
    /// receives the PKCS#12; --break-glass adds them at once and writes
    /// --out.
    Add(AddArgs),
    /// Change an operator's roles: submitted for approval in the operator
    /// console, or --break-glass.
    Role(RoleArgs),
    /// The operators, their roles, state and newest certificate.
    List(ListArgs),
    /// Revoke an operator: every certificate of theirs is revoked (refused
    /// from the next handshake) and they can no longer open the console.
    Revoke(Named),
    /// Lift an operator's password stopped by wrong passwords in a row.
    Unlock(Named),
}

// The options of `Add` (its help is the variant's).
#[derive(clap::Args)]
pub(crate) struct AddArgs {
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
    /// The operator's e-mail address (every 運用管理者 is mailed when a
    /// change is made with --break-glass).
    #[arg(long, default_value = "")]
    email: String,
    /// Where to write the PKCS#12 file (must not exist yet): the first
    /// operator and --break-glass.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    op: Operator,
    #[command(flatten)]
    approval: Approval,
    #[arg(long)]
    json: bool,
}

// The options of `Role` (its help is the variant's).
#[derive(clap::Args)]
pub(crate) struct RoleArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long)]
    name: String,
    /// The roles they will hold; repeat or separate by ','.
    #[arg(long = "role", required = true)]
    roles: Vec<String>,
    #[command(flatten)]
    op: Operator,
    #[command(flatten)]
    approval: Approval,
}

// The options of `List` (its help is the variant's).
#[derive(clap::Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long)]
    json: bool,
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
        OperatorCommand::Add(args) => add(args).await,
        OperatorCommand::Role(args) => role(args).await,
        OperatorCommand::List(args) => list(args).await,
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

async fn add(args: AddArgs) -> Result<()> {
    let AddArgs {
        common,
        name,
        roles,
        email,
        out,
        op,
        approval,
        json,
    } = args;
    let svc = open_cli(&common).await?;
    let roles = roles.join(",");
    let first = svc.operator_count().await? == 0;
    if first && (approval.break_glass || approval.reason.is_some()) {
        bail!("there is no operator yet: the first one is added at once, without --break-glass");
    }
    let change = ApprovalChange::AddOperator {
        name: name.clone(),
        roles: roles.clone(),
        email: email.clone(),
    };
    if !first && !approval.break_glass {
        if out.is_some() {
            bail!(
                "--out is for the first operator and --break-glass: a submitted operator's PKCS#12 is handed to the approving operator in the operator console"
            );
        }
        approval.run(&svc, change, &op).await?.print(|_| {});
        return Ok(());
    }
    let Some(out) = out else {
        bail!("--out FILE is needed: the new operator's PKCS#12 is written there");
    };
    // Refuse before anything is made: the file is never overwritten.
    let mut file = {
        let mut opts = std::fs::OpenOptions::new();
        std::os::unix::fs::OpenOptionsExt::mode(opts.write(true).create_new(true), 0o600);
        opts.open(&out)
            .with_context(|| format!("cannot create {}", out.display()))?
    };
    let added: Result<NewOperator> = if first {
        svc.add_first_operator(&name, &roles, &email, &op.name())
            .await
            .map_err(Into::into)
    } else {
        match approval.run(&svc, change, &op).await {
            Ok(done) => {
                done.print(|_| {});
                match done {
                    Done::BrokeGlass(d) => match d.applied {
                        Applied::OperatorAdded(n) => Ok(n),
                        _ => Err(anyhow::anyhow!("the break-glass added no operator")),
                    },
                    Done::Submitted(_) => Err(anyhow::anyhow!("submitted instead of committed")),
                }
            }
            Err(e) => Err(e),
        }
    };
    let added = match added {
        Ok(a) => a,
        Err(e) => {
            drop(file);
            let _ = std::fs::remove_file(&out);
            return Err(e);
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

async fn role(args: RoleArgs) -> Result<()> {
    let RoleArgs {
        common,
        name,
        roles,
        op,
        approval,
    } = args;
    let svc = open_cli(&common).await?;
    let roles = roles.join(",");
    let change = ApprovalChange::ChangeOperatorRoles {
        operator: name.clone(),
        roles: roles.clone(),
    };
    approval.run(&svc, change, &op).await?.print(|_| {
        println!("operator {name} now holds the role(s) {roles}");
    });
    Ok(())
}

async fn list(args: ListArgs) -> Result<()> {
    let ListArgs { common, json } = args;
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
