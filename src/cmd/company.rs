//! `shomei company …`: the bank's companies listed and shown, opened and
//! closed (through the console's approval, or break-glass), their
//! contracted service changed.

use anyhow::{Result, bail};
use clap::Subcommand;
use shomei_service::{Applied, ApprovalChange};

use super::approval::Approval;
use super::{Common, Operator, open_cli, open_records, pad, rfc3339};

#[derive(Subcommand)]
pub(crate) enum CompanyCommand {
    /// The companies, with their service and number of users.
    List(ListArgs),
    /// Open a company contracted to a service, with its first マスター:
    /// submitted for approval in the operator console (or --break-glass,
    /// which prints the マスター's temporary passwords).
    Create(CreateArgs),
    /// Close a company (解約): all its users stopped, all its certificates
    /// revoked; submitted for approval in the operator console (or
    /// --break-glass).
    Close(CloseArgs),
    /// A company and its users.
    Show(ShowArgs),
    /// Change a company's contracted service.
    SetService(SetServiceArgs),
}

// The options of `List` (its help is the variant's).
#[derive(clap::Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long)]
    json: bool,
}

// The options of `Create` (its help is the variant's).
#[derive(clap::Args)]
pub(crate) struct CreateArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long)]
    name: String,
    /// business-ib (ビジネスIB) or hottokun-webjr (ほっと君WebJr.).
    #[arg(long)]
    service: String,
    /// The first マスター's login ID.
    #[arg(long)]
    master_login_id: String,
    /// The first マスター's name.
    #[arg(long)]
    master_name: String,
    #[arg(long, default_value = "")]
    master_email: String,
    #[command(flatten)]
    op: Operator,
    #[command(flatten)]
    approval: Approval,
    #[arg(long)]
    json: bool,
}

// The options of `Close` (its help is the variant's).
#[derive(clap::Args)]
pub(crate) struct CloseArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long)]
    id: i64,
    #[command(flatten)]
    op: Operator,
    #[command(flatten)]
    approval: Approval,
}

// The options of `Show` (its help is the variant's).
#[derive(clap::Args)]
pub(crate) struct ShowArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long)]
    id: i64,
    #[arg(long)]
    json: bool,
}

// The options of `SetService` (its help is the variant's).
#[derive(clap::Args)]
pub(crate) struct SetServiceArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long)]
    id: i64,
    #[arg(long)]
    service: String,
    #[command(flatten)]
    op: Operator,
}

/// Runs one `shomei company` command.
pub(crate) async fn run(command: CompanyCommand) -> Result<()> {
    match command {
        CompanyCommand::List(args) => list(args).await,
        CompanyCommand::Create(args) => create(args).await,
        CompanyCommand::Close(args) => close(args).await,
        CompanyCommand::Show(args) => show(args).await,
        CompanyCommand::SetService(args) => set_service(args).await,
    }
}

async fn list(args: ListArgs) -> Result<()> {
    let ListArgs { common, json } = args;
    company_list(common, json).await
}

async fn create(args: CreateArgs) -> Result<()> {
    let CreateArgs {
        common,
        name,
        service,
        master_login_id,
        master_name,
        master_email,
        op,
        approval,
        json,
    } = args;
    let service = service_of(&service)?;
    let svc = open_cli(&common).await?;
    let change = ApprovalChange::OpenCompany {
        company: name.trim().to_owned(),
        service: service.code().to_owned(),
        login_id: master_login_id,
        name: master_name,
        email: master_email,
    };
    approval.run(&svc, change, &op).await?.print(|a| {
        if let Applied::CompanyOpened {
            company_id,
            company,
            login_id,
            passwords,
        } = a
        {
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "id": company_id.0,
                        "name": company,
                        "service": service.code(),
                        "login_id": login_id,
                        "login_password": passwords.login,
                        "confirm_password": passwords.confirm,
                    })
                );
            } else {
                println!(
                    "company {} opened: {company} ({})",
                    company_id.0,
                    service.label()
                );
                print_passwords(login_id, passwords, false);
            }
        }
    });
    Ok(())
}

async fn close(args: CloseArgs) -> Result<()> {
    let CloseArgs {
        common,
        id,
        op,
        approval,
    } = args;
    let svc = open_cli(&common).await?;
    let (c, _) = svc.operator_company(shomei_core::CompanyId(id)).await?;
    let change = ApprovalChange::CloseCompany {
        company_id: id,
        company: c.name,
    };
    approval.run(&svc, change, &op).await?.print(|a| {
        if let Applied::CompanyClosed {
            users_stopped,
            certificates_revoked,
            ..
        } = a
        {
            println!(
                "company {id} closed: {users_stopped} user(s) stopped, {certificates_revoked} certificate(s) revoked"
            );
        }
    });
    Ok(())
}

async fn show(args: ShowArgs) -> Result<()> {
    let ShowArgs { common, id, json } = args;
    let svc = open_cli(&common).await?;
    let (c, users) = svc.operator_company(shomei_core::CompanyId(id)).await?;
    let now = svc.now();
    let state = |u: &shomei_service::User| {
        u.counters
            .service_states(now)
            .iter()
            .map(|s| s.label())
            .collect::<Vec<_>>()
            .join("、")
    };
    if json {
        let users: Vec<_> = users
            .iter()
            .map(|u| {
                serde_json::json!({
                    "login_id": u.login_id.as_str(),
                    "name": u.name,
                    "role": u.role.code(),
                    "email": u.email,
                    "state": state(u),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "id": c.id.0, "name": c.name, "service": c.service.code(),
                "created_at": rfc3339(c.created_at), "users": users,
            })
        );
        return Ok(());
    }
    println!(
        "company {}: {} ({}), created {}",
        c.id.0,
        c.name,
        c.service.label(),
        rfc3339(c.created_at)
    );
    println!(
        "  {}{}{}state",
        pad("login ID", 14),
        pad("name", 16),
        pad("role", 16)
    );
    for u in &users {
        println!(
            "  {}{}{}{}",
            pad(u.login_id.as_str(), 14),
            pad(&u.name, 16),
            pad(u.role.label(), 16),
            state(u)
        );
    }
    Ok(())
}

async fn set_service(args: SetServiceArgs) -> Result<()> {
    let SetServiceArgs {
        common,
        id,
        service,
        op,
    } = args;
    let service = service_of(&service)?;
    let svc = open_cli(&common).await?;
    svc.operator_set_service(shomei_core::CompanyId(id), service, &op.name())
        .await?;
    println!("company {id} now contracts {}", service.label());
    Ok(())
}

async fn company_list(common: Common, json: bool) -> Result<()> {
    let records = open_records(&common).await?;
    let companies = records.companies().await?;
    if json {
        for c in &companies {
            println!(
                "{}",
                serde_json::json!({
                    "id": c.id.0,
                    "name": c.name,
                    "service": c.service.code(),
                    "users": c.users,
                    "created_at": rfc3339(c.created_at),
                })
            );
        }
        return Ok(());
    }
    println!(
        "{}{}{}{}created",
        pad("id", 6),
        pad("company", 28),
        pad("service", 18),
        pad("users", 7)
    );
    for c in &companies {
        println!(
            "{}{}{}{}{}",
            pad(&c.id.0.to_string(), 6),
            pad(&c.name, 28),
            pad(c.service.label(), 18),
            pad(&c.users.to_string(), 7),
            rfc3339(c.created_at)
        );
    }
    Ok(())
}

fn service_of(s: &str) -> Result<shomei_core::Service> {
    match s {
        "business-ib" | "business_ib" => Ok(shomei_core::Service::BusinessIb),
        "hottokun-webjr" | "hottokun_webjr" => Ok(shomei_core::Service::HottokunWebJr),
        other => bail!("unknown service {other:?}: use business-ib or hottokun-webjr"),
    }
}

pub(crate) fn print_passwords(login_id: &str, t: &shomei_service::TemporaryPasswords, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::json!({ "login_id": login_id, "login_password": t.login, "confirm_password": t.confirm })
        );
    } else {
        println!(
            "{login_id}: temporary login password {}  confirmation password {}",
            t.login, t.confirm
        );
        println!("(both must be changed at the first login)");
    }
}
