//! `shomei cert …`: a user's certificate shown, or revoked on a phone request.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use shomei_core::LoginId;

use shomei_service::Applied;

use super::{Common, Operator, approval, load, open_existing};

#[derive(Subcommand)]
pub(crate) enum CertCommand {
    /// Print a user's most recent certificate (PEM) and its state.
    Show {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        login_id: String,
    },
    /// Revoke a user's certificate on a phone request. A running server puts
    /// it in force within a second (TLS, sessions, OCSP, then the CRLs).
    Revoke {
        #[command(flatten)]
        common: Common,
        #[arg(long)]
        login_id: String,
        /// key-compromise, affiliation-changed, superseded,
        /// cessation-of-operation or unspecified.
        #[arg(long)]
        reason: String,
        /// When the key was (suspected to be) compromised, RFC 3339, e.g.
        /// 2026-11-20T09:00:00+09:00; listed in the CRL entry.
        #[arg(long)]
        invalidity_date: Option<String>,
        /// Who takes the request (written to 操作履歴). Default: $USER.
        #[arg(long)]
        operator: Option<String>,
        /// When the bank's approval rule for a revocation on a company's
        /// behalf (revoke-for-company) asks for approvals, the revocation is
        /// submitted for them in the operator console; this commits it at
        /// once instead, in an emergency only: a prominent 緊急実行（承認省略）
        /// row with --break-glass-reason and a mail to every 運用管理者.
        #[arg(long)]
        break_glass: bool,
        /// Why the revocation cannot wait for approval (with --break-glass;
        /// 1-200 characters). Not --reason: that is the CRL reason here.
        #[arg(long)]
        break_glass_reason: Option<String>,
    },
}

/// Runs one `shomei cert` command.
pub(crate) async fn run(command: CertCommand) -> Result<()> {
    match command {
        CertCommand::Show { common, login_id } => cert_show(common, &login_id).await,
        CertCommand::Revoke {
            common,
            login_id,
            reason,
            invalidity_date,
            operator,
            break_glass,
            break_glass_reason,
        } => {
            let approval = approval::Approval {
                break_glass,
                reason: break_glass_reason,
            };
            cert_revoke(
                common,
                &login_id,
                &reason,
                invalidity_date.as_deref(),
                Operator { operator },
                approval,
            )
            .await
        }
    }
}

async fn cert_show(common: Common, login_id: &str) -> Result<()> {
    let cfg = load(&common)?;
    let svc = open_existing(&common, &cfg).await?;
    let Some(id) = LoginId::parse(login_id) else {
        bail!("invalid login ID {login_id:?}: half-width letters and digits only")
    };
    let (serial, state, not_after, der) = match svc.certificate_of(&id).await? {
        shomei_service::CertificateOf::NoSuchUser => bail!("no user with login ID {login_id}"),
        shomei_service::CertificateOf::NoCertificate => {
            bail!("user {login_id} has no certificate (未発行)")
        }
        shomei_service::CertificateOf::Latest {
            serial,
            state,
            not_after,
            der,
        } => (serial, state, not_after, der),
    };
    eprintln!(
        "login ID {login_id}: serial {serial} state {} not after {not_after}",
        state.label(),
    );
    print!("{}", shomei_pki::to_pem("CERTIFICATE", &der));
    Ok(())
}

async fn cert_revoke(
    common: Common,
    login_id: &str,
    reason: &str,
    invalidity_date: Option<&str>,
    op: Operator,
    approval: approval::Approval,
) -> Result<()> {
    use shomei_core::RevocationReason as R;
    let reason = match reason {
        "key-compromise" => R::KeyCompromise,
        "affiliation-changed" => R::AffiliationChanged,
        "superseded" => R::Superseded,
        "cessation-of-operation" => R::CessationOfOperation,
        "unspecified" => R::Unspecified,
        other => bail!(
            "unknown reason {other:?}: use key-compromise, affiliation-changed, superseded, cessation-of-operation or unspecified"
        ),
    };
    let invalidity = invalidity_date
        .map(|d| {
            time::OffsetDateTime::parse(d, &time::format_description::well_known::Rfc3339)
                .with_context(|| format!("invalid --invalidity-date {d:?}: use RFC 3339, e.g. 2026-11-20T09:00:00+09:00"))
        })
        .transpose()?;
    let Some(id) = LoginId::parse(login_id) else {
        bail!("invalid login ID {login_id:?}: half-width letters and digits only")
    };
    if approval.reason.is_some() && !approval.break_glass {
        bail!("--break-glass-reason goes with --break-glass");
    }
    let cfg = load(&common)?;
    let svc = open_existing(&common, &cfg).await?;
    let request = shomei_service::PhoneRequest {
        reason,
        invalidity,
        caller: "",
    };
    let done = if approval.break_glass {
        // Only where the rule holds the revocation for approval.
        let rules = svc.approval_rules().await?;
        if rules
            .iter()
            .any(|r| r.kind == shomei_service::ApprovalKind::RevokeForCompany && r.required == 0)
        {
            bail!(
                "--break-glass is for a revocation the bank's approval rule holds for approval; this bank's rule (revoke-for-company) asks for none: run it without --break-glass"
            );
        }
        None
    } else {
        match svc
            .revoke_by_operator(&id, reason, invalidity, &op.name())
            .await
        {
            Ok(done) => Some(done),
            Err(shomei_service::OperatorRevokeError::NeedsApproval { required }) => {
                eprintln!(
                    "not revoked at once: this bank's rule (revoke-for-company) asks {required} other operator(s) to approve a revocation on a company's behalf"
                );
                None
            }
            Err(e) => bail!("not revoked: {e}"),
        }
    };
    let Some(done) = done else {
        // Submitted for approval, or committed as break-glass.
        let change = svc
            .phone_revocation_change(&id, &request)
            .await
            .map_err(|e| anyhow::anyhow!("not revoked: {e}"))?;
        approval.run(&svc, change, &op).await?.print(|a| {
            if let Applied::CertificateRevoked {
                company,
                login_id,
                serial,
            } = a
            {
                println!("revoked: {login_id} ({company}) serial {serial}");
            }
        });
        return Ok(());
    };
    println!(
        "revoked: {} ({}) serial {} at {}",
        done.login_id,
        done.company,
        done.serial,
        done.at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    );
    Ok(())
}
