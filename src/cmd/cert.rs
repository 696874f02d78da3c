//! `shomei cert …`: a user's certificate shown, or revoked on a phone request.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use shomei_core::LoginId;

use super::{Common, load, open_existing};

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
        } => {
            cert_revoke(
                common,
                &login_id,
                &reason,
                invalidity_date.as_deref(),
                operator,
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
    operator: Option<String>,
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
    let operator = operator
        .or_else(|| std::env::var("USER").ok())
        .filter(|o| !o.trim().is_empty())
        .unwrap_or_else(|| "operator".into());
    let cfg = load(&common)?;
    let svc = open_existing(&common, &cfg).await?;
    let done = svc
        .revoke_by_operator(&id, reason, invalidity, &operator)
        .await
        .map_err(|e| anyhow::anyhow!("not revoked: {e}"))?;
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
