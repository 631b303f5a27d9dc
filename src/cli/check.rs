//! `rowhook check [--offline]`.

use std::path::Path;

use rowhook::capture::{Finding, Severity};
use rowhook::capture::{notify, replication};
use rowhook::config::SourceMode;
use rowhook::deliver::check_targets;
use rowhook::inbound::check_inbound;
use rowhook::model::check_relations;
use rowhook::postgres;

use super::{Failure, database_url, load_config};

pub(crate) async fn run(path: &Path, offline: bool) -> Result<(), Failure> {
    let config = load_config(path)?;
    super::router(&config)?;
    let mut parts = vec![
        format!("{} model(s)", config.models.len()),
        format!("{} webhook(s)", config.webhooks.len()),
    ];
    if !config.alerts.is_empty() {
        parts.push(format!("{} alert target(s)", config.alerts.len()));
    }
    if let Some(inbound) = &config.inbound {
        parts.push(format!("{} inbound endpoint(s)", inbound.endpoints.len()));
    }
    println!(
        "ok: {} is valid ({})",
        config.file.display(),
        parts.join(", ")
    );
    // Only warnings: they never fail `check`, offline or not.
    for finding in check_targets(&config, !offline).await {
        println!("{finding}");
    }
    if offline {
        return Ok(());
    }
    let url = database_url(&config)?;
    let findings = match postgres::connect(&url).await {
        Err(error) => vec![Finding::error(error.to_string())],
        Ok(client) => {
            let mut findings = match config.source.mode {
                SourceMode::Replication => replication::check(&client, &url, &config).await,
                SourceMode::Notify => notify::check(&client, &config).await,
            };
            findings.extend(check_relations(&client, &config).await);
            findings.extend(check_inbound(&client, &config).await);
            findings
        }
    };
    let mut failed = false;
    for finding in &findings {
        println!("{finding}");
        failed |= finding.severity == Severity::Error;
    }
    if failed {
        return Err(Failure::Configuration(vec![format!(
            "error: {} problem(s) found",
            findings
                .iter()
                .filter(|finding| finding.severity == Severity::Error)
                .count()
        )]));
    }
    Ok(())
}
