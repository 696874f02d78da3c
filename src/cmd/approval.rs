//! The dangerous changes from the server's shell go through the console's
//! four-eyes approval: the command SUBMITS a request (the requester is the
//! shell user, `cli:<user>`) that operators approve in the operator console,
//! or, with `--break-glass --reason "…"`, commits at once with a prominent
//! 操作履歴 row and a mail to every 運用管理者. `shomei approval list` and
//! `show` read the queue. Approving is not possible here: whoever holds the
//! server's shell could pose as any operator, so it would not be a second
//! pair of eyes.

use anyhow::{Result, bail};
use shomei_service::{
    ApprovalChange, ApprovalKind, ApprovalView, BreakGlassDone, Shomei, Submitted,
};

use super::{Common, Operator, open_cli, pad, rfc3339};

/// Submit for approval (the default), or break-glass.
#[derive(clap::Args)]
pub(crate) struct Approval {
    /// Commit at once without approval, in an emergency only: a prominent
    /// 緊急実行（承認省略） row with --reason goes to 操作履歴 and every
    /// 運用管理者 with an e-mail address is mailed. Needs --reason.
    #[arg(long)]
    pub break_glass: bool,
    /// Why the change cannot wait for another operator's approval (with
    /// --break-glass; 1-200 characters).
    #[arg(long)]
    pub reason: Option<String>,
}

/// What the command did.
pub(crate) enum Done {
    Submitted(Submitted),
    BrokeGlass(BreakGlassDone),
}

impl Approval {
    /// Submits `change`, or commits it as break-glass; the refusal (in
    /// English) otherwise, nothing changed.
    pub(crate) async fn run(
        &self,
        svc: &Shomei,
        change: ApprovalChange,
        op: &Operator,
    ) -> Result<Done> {
        if !self.break_glass {
            if self.reason.is_some() {
                bail!(
                    "--reason goes with --break-glass; without it the change is submitted for approval"
                );
            }
            return Ok(Done::Submitted(
                svc.submit_from_shell(change, &op.name()).await?,
            ));
        }
        let reason = self.reason.as_deref().unwrap_or("");
        Ok(Done::BrokeGlass(
            svc.break_glass(change, &op.name(), reason).await?,
        ))
    }
}

impl Done {
    /// Prints what was done; `committed` says what a break-glass changed
    /// (on standard output, so `--json` stays one JSON value), and the
    /// break-glass warning and whom it notified on standard error.
    pub(crate) fn print(&self, committed: impl FnOnce(&shomei_service::Applied)) {
        match self {
            Done::Submitted(s) => print_submitted(s),
            Done::BrokeGlass(d) => {
                committed(&d.applied);
                eprintln!(
                    "BREAK-GLASS: committed without approval; 操作履歴 has its 緊急実行（承認省略） row with the reason"
                );
                for (name, email) in &d.notified {
                    eprintln!("notified 運用管理者 {name} <{email}>");
                }
                for name in &d.not_notified {
                    eprintln!("NOT notified 運用管理者 {name}: no e-mail address");
                }
                if d.notified.is_empty() && d.not_notified.is_empty() {
                    eprintln!("NOT notified: there is no active 運用管理者");
                }
            }
        }
    }
}

fn print_submitted(s: &Submitted) {
    println!("request {} submitted: {}", s.id, s.summary);
    println!(
        "It commits once {} operator(s) with the role(s) {} approve it in the operator console, before {}.",
        s.required,
        s.roles.codes(),
        rfc3339(s.expires_at)
    );
}

#[derive(clap::Subcommand)]
pub(crate) enum ApprovalCommand {
    /// The requests waiting for approval (every request with --all), newest
    /// first. Approving or rejecting is done in the operator console only:
    /// on the shell anyone could pose as an operator.
    List(ListArgs),
    /// One request: its data, its rule and its votes.
    Show(ShowArgs),
    /// Change the approval rule of a kind of change (how many operators
    /// other than the requester approve, and which roles may): submitted for
    /// approval in the operator console, or --break-glass.
    Rule(RuleArgs),
}

// The options of `List` (its help is the variant's).
#[derive(clap::Args)]
pub(crate) struct ListArgs {
    #[command(flatten)]
    common: Common,
    #[arg(long)]
    all: bool,
    #[arg(long, default_value_t = 1)]
    page: i64,
    #[arg(long)]
    json: bool,
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

// The options of `Rule` (its help is the variant's).
#[derive(clap::Args)]
pub(crate) struct RuleArgs {
    #[command(flatten)]
    common: Common,
    /// open-company, close-company, register-master,
    /// reset-master-passwords, add-operator, change-operator-roles,
    /// change-approval-rule or revoke-for-company.
    #[arg(long)]
    kind: String,
    #[arg(long)]
    required: u32,
    /// Roles whose holders may approve; repeat or separate by ','.
    #[arg(long = "role", required = true)]
    roles: Vec<String>,
    #[command(flatten)]
    op: Operator,
    #[command(flatten)]
    approval: Approval,
}

fn state_of(v: &ApprovalView) -> &'static str {
    v.state_code
}

fn json_of(v: &ApprovalView) -> serde_json::Value {
    serde_json::json!({
        "id": v.id,
        "kind": v.kind.code(),
        "state": state_of(v),
        "summary": v.summary,
        "change": v.change,
        "requester": v.requester,
        "requested_at": rfc3339(v.requested_at),
        "expires_at": rfc3339(v.expires_at),
        "required": v.required,
        "roles": v.roles.codes(),
        "approvals": v.approvals,
        "decided_at": v.decided_at.map(rfc3339),
        "decided_by": v.decided_by,
        "votes": v.votes.iter().map(|x| serde_json::json!({
            "operator": x.operator, "vote": x.vote, "at": rfc3339(x.at),
        })).collect::<Vec<_>>(),
    })
}

pub(crate) async fn approval_task(command: ApprovalCommand) -> Result<()> {
    match command {
        ApprovalCommand::List(args) => list(args).await,
        ApprovalCommand::Show(args) => show(args).await,
        ApprovalCommand::Rule(args) => rule(args).await,
    }
}

async fn list(args: ListArgs) -> Result<()> {
    let ListArgs {
        common,
        all,
        page,
        json,
    } = args;
    let svc = open_cli(&common).await?;
    let p = svc.approval_list(all, page).await?;
    if json {
        let list: Vec<_> = p.requests.iter().map(json_of).collect();
        println!("{}", serde_json::Value::Array(list));
        return Ok(());
    }
    println!(
        "{}{}{}{}{}{}summary",
        pad("id", 6),
        pad("state", 11),
        pad("kind", 24),
        pad("requester", 16),
        pad("approvals", 11),
        pad("expires", 27),
    );
    for v in &p.requests {
        println!(
            "{}{}{}{}{}{}{}",
            pad(&v.id.to_string(), 6),
            pad(state_of(v), 11),
            pad(v.kind.code(), 24),
            pad(&v.requester, 16),
            pad(&format!("{}/{}", v.approvals, v.required), 11),
            pad(&rfc3339(v.expires_at), 27),
            v.summary
        );
    }
    println!(
        "page {} of {} ({} request(s)); approve or reject in the operator console",
        p.page, p.pages, p.total
    );
    Ok(())
}

async fn show(args: ShowArgs) -> Result<()> {
    let ShowArgs { common, id, json } = args;
    let svc = open_cli(&common).await?;
    let v = svc.approval_detail(id).await?;
    if json {
        println!("{}", json_of(&v));
        return Ok(());
    }
    println!("request {}: {} ({})", v.id, v.kind.code(), state_of(&v));
    println!("summary:      {}", v.summary);
    println!(
        "requester:    {} at {}",
        v.requester,
        rfc3339(v.requested_at)
    );
    println!("expires:      {}", rfc3339(v.expires_at));
    println!(
        "rule:         {} approval(s) by {}; {} so far",
        v.required,
        v.roles.codes(),
        v.approvals
    );
    if let Some(at) = v.decided_at {
        println!(
            "decided:      {} by {}",
            rfc3339(at),
            v.decided_by.as_deref().unwrap_or("")
        );
    }
    println!(
        "change:       {}",
        serde_json::to_string(&v.change).unwrap_or_default()
    );
    for x in &v.votes {
        println!(
            "vote:         {} {} at {}",
            x.operator,
            x.vote,
            rfc3339(x.at)
        );
    }
    Ok(())
}

async fn rule(args: RuleArgs) -> Result<()> {
    let RuleArgs {
        common,
        kind,
        required,
        roles,
        op,
        approval,
    } = args;
    let Some(k) = ApprovalKind::from_code(&kind) else {
        bail!("unknown kind of change {kind:?}");
    };
    let svc = open_cli(&common).await?;
    let change = ApprovalChange::ChangeApprovalRule {
        rule: k.code().to_owned(),
        required,
        roles: roles.join(","),
    };
    approval.run(&svc, change, &op).await?.print(|_| {
        println!(
            "approval rule of {kind} changed: {required} approval(s) by {}",
            roles.join(",")
        );
    });
    Ok(())
}
