//! `rowhook inbound list`: the inbound request log, from the store or the running
//! service's admin API.

use std::path::Path;

use rowhook::inbound::{InboundOutcome, InboundQuery, InboundRecord};
use rowhook::time::rfc3339_from_unix_ms;

use super::events::source::History;
use super::{Failure, load_config};
use crate::cli::events::text::table;

pub(crate) async fn list(
    path: &Path,
    endpoint: Option<String>,
    outcome: Option<InboundOutcome>,
    limit: usize,
    as_json: bool,
) -> Result<(), Failure> {
    let config = load_config(path)?;
    if let Some(name) = &endpoint {
        let known = config
            .inbound
            .as_ref()
            .is_some_and(|inbound| inbound.endpoint(name).is_some());
        if !known {
            return Err(Failure::Configuration(vec![format!(
                "--endpoint: no inbound endpoint {name:?} in {}",
                config.file.display()
            )]));
        }
    }
    let history = History::open(&config).await?;
    let query = InboundQuery {
        endpoint,
        outcome,
        limit,
    };
    let result = history.inbound(&query).await;
    history.close().await?;
    let records = result?;
    if as_json {
        println!("{}", serde_json::to_string(&records).unwrap_or_default());
    } else if records.is_empty() {
        println!("no inbound requests");
    } else {
        print!("{}", records_table(&records));
    }
    Ok(())
}

fn records_table(records: &[InboundRecord]) -> String {
    let rows: Vec<Vec<String>> = records
        .iter()
        .map(|record| {
            vec![
                rfc3339_from_unix_ms(record.received_at_ms),
                record.endpoint.clone(),
                record.outcome.to_string(),
                record.status.to_string(),
                record.event_id.clone().unwrap_or_else(|| "-".into()),
                record.body_bytes.to_string(),
                record.reason.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(
        &[
            "RECEIVED", "ENDPOINT", "OUTCOME", "STATUS", "EVENT", "BYTES", "REASON",
        ],
        &rows,
    )
}
