//! `shomei user …`: a company's マスター registered, a user's locks
//! released, temporary passwords given.

use anyhow::{Result, bail};
use clap::Subcommand;
use shomei_service::{Applied, ApprovalChange};

use super::approval::Approval;
use super::company::print_passwords;
use super::{Common, Operator, login_id_of, open_cli};

#[derive(Subcommand)]
pub(crate) enum UserCommand {
    /// Register a マスター user for a company that has none left: submitted
    /// for approval in the operator console (the approver gets the temporary
    /// passwords), or --break-glass, which prints them.
    CreateMaster {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        company_id: i64,
        #[arg(long)]
        login_id: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        email: String,
        #[command(flatten)]
        op: Operator,
        #[command(flatten)]
        approval: Approval,
        #[arg(long)]
        json: bool,
    },
    /// Release a user's password locks and stop (e.g. a locked-out マスター).
    Unlock {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        login_id: String,
        #[command(flatten)]
        op: Operator,
    },
    /// New temporary login and confirmation passwords, to be changed at the
    /// next login. A マスター's are submitted for approval in the operator
    /// console (the approver gets them), or --break-glass.
    ResetPassword {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        login_id: String,
        #[command(flatten)]
        op: Operator,
        #[command(flatten)]
        approval: Approval,
        #[arg(long)]
        json: bool,
    },
}

/// Runs one `shomei user` command.
pub(crate) async fn run(command: UserCommand) -> Result<()> {
    match command {
        UserCommand::CreateMaster {
            common,
            company_id,
            login_id,
            name,
            email,
            op,
            approval,
            json,
        } => {
            let svc = open_cli(&common).await?;
            let (c, _) = svc
                .operator_company(shomei_core::CompanyId(company_id))
                .await?;
            let change = ApprovalChange::RegisterMaster {
                company_id,
                company: c.name,
                login_id,
                name,
                email,
            };
            approval.run(&svc, change, &op).await?.print(|a| {
                if let Applied::MasterRegistered {
                    login_id,
                    passwords,
                    ..
                } = a
                {
                    print_passwords(login_id, passwords, json);
                }
            });
            Ok(())
        }
        UserCommand::Unlock {
            common,
            login_id,
            op,
        } => {
            let id = login_id_of(&login_id)?;
            let svc = open_cli(&common).await?;
            svc.operator_unlock(&id, &op.name()).await?;
            println!("{login_id}: locks released");
            Ok(())
        }
        UserCommand::ResetPassword {
            common,
            login_id,
            op,
            approval,
            json,
        } => {
            let id = login_id_of(&login_id)?;
            let svc = open_cli(&common).await?;
            if let Some(change) = svc.master_reset_change(&id).await? {
                approval.run(&svc, change, &op).await?.print(|a| {
                    if let Applied::MasterPasswordsReset { done, .. } = a {
                        let t = shomei_service::TemporaryPasswords {
                            login: done.login.clone().unwrap_or_default(),
                            confirm: done.confirm.clone().unwrap_or_default(),
                        };
                        print_passwords(&done.login_id, &t, json);
                    }
                });
                return Ok(());
            }
            if approval.break_glass || approval.reason.is_some() {
                bail!(
                    "{login_id} is not a マスター: their passwords are reset at once, without --break-glass"
                );
            }
            let t = svc.operator_reset_passwords(&id, &op.name()).await?;
            print_passwords(&login_id, &t, json);
            Ok(())
        }
    }
}
