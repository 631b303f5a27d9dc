//! `rowhook send-test WEBHOOK [--item JSON]`: render a sample `create` event for one
//! webhook and send it once, now, like a "test webhook" button. Nothing is stored.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use rowhook::change::{Action, Change, Lsn, Position, Row};
use rowhook::config::Config;
use rowhook::deliver::{AttemptOptions, DeliveryClient};
use rowhook::event::Attempt;
use rowhook::history::masked_request;
use rowhook::model::Relations;
use rowhook::outgoing::Outgoing;
use rowhook::time::now_ms;
use serde_json::Value;

use super::events::text::request_text;
use super::{Failure, database_url, load_config, router};

pub(crate) async fn run(path: &Path, name: &str, item: Option<&str>) -> Result<(), Failure> {
    let config = load_config(path)?;
    let router = router(&config)?;
    let webhook = config
        .webhook(name)
        .ok_or_else(|| unknown_webhook(&config, name))?;
    let model = config.models.get(&webhook.model).ok_or_else(|| {
        Failure::Configuration(vec![format!(
            "{}: webhook {name:?} names model {:?}, which is not defined",
            config.file.display(),
            webhook.model
        )])
    })?;
    // Relations are looked up for an `--item` too, from the keys it gives.
    let relations = Relations::new(&config, database_url(&config)?, Arc::default());
    let item = match item {
        Some(text) => {
            let mut item = parse_item(text)?;
            relations
                .enrich(&model.name, &webhook.include, vec![&mut item])
                .await
                .map_err(|error| anyhow!("{error}"))?;
            item
        }
        None => relations
            .newest_row(&model.name, &webhook.include)
            .await
            .map_err(|error| anyhow!("{error}"))?
            .ok_or_else(|| {
                anyhow!(
                    "{} is empty: give a sample row with --item '{{\"id\": 1, …}}'",
                    model.table
                )
            })?,
    };

    let now = now_ms();
    let change = Change {
        action: Action::Create,
        table: model.table.clone(),
        item,
        old: None,
        changed: None,
        lsn: Lsn(0),
        // A position of its own, so the event id is unlike any real event's.
        position: Position {
            transaction: now,
            sequence: 0,
        },
        commit_time_micros: i64::try_from(now.saturating_mul(1000)).unwrap_or(i64::MAX),
    };
    let routed = router
        .render_for(name, &change)
        .ok_or_else(|| unknown_webhook(&config, name))?;
    let request = routed.request.map_err(|error| {
        anyhow!(
            "cannot render the request: {}",
            config.secrets.mask_all(&error.to_string())
        )
    })?;

    // The request exactly as delivery sends it, secrets masked.
    print!(
        "{}",
        request_text(&masked_request(
            &routed.id,
            &request,
            Some(webhook),
            &config.secrets
        ))
    );

    let client = DeliveryClient::new(&config.deny).context("cannot build the HTTP client")?;
    let options = AttemptOptions {
        number: 1,
        outgoing: Outgoing {
            event_id: &routed.id,
            event_id_header: &webhook.delivery.event_id_header,
            secret: webhook.secret.as_deref(),
        },
        timeout: webhook.delivery.timeout,
    };
    let attempt = client.attempt(&request, &options).await;
    // A receiver may echo what it was sent, and an error may quote the URL.
    print!("\n{}", config.secrets.mask_all(&response_text(&attempt)));
    if attempt.succeeded() {
        Ok(())
    } else {
        Err(Failure::Runtime(anyhow!(
            "the test delivery failed: {}",
            config
                .secrets
                .mask_all(attempt.error.as_deref().unwrap_or("unknown reason"))
        )))
    }
}

/// A usage error naming the configured webhooks.
pub(crate) fn unknown_webhook(config: &Config, name: &str) -> Failure {
    let known: Vec<&str> = config
        .webhooks
        .iter()
        .map(|webhook| webhook.name.as_str())
        .collect();
    Failure::Configuration(vec![format!(
        "{}: no webhook named {name:?} (configured: {})",
        config.file.display(),
        if known.is_empty() {
            "none".to_string()
        } else {
            known.join(", ")
        }
    )])
}

/// `--item`: a JSON object, else a usage error.
pub(crate) fn parse_item(text: &str) -> Result<Row, Failure> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(row)) => Ok(row),
        Ok(_) => Err(Failure::Configuration(vec![
            "error: --item must be a JSON object, such as '{\"id\": 1}'".to_string(),
        ])),
        Err(error) => Err(Failure::Configuration(vec![format!(
            "error: --item is not valid JSON: {error}"
        )])),
    }
}

/// The attempt's outcome: status code or error kind and text, duration, response body.
pub(crate) fn response_text(attempt: &Attempt) -> String {
    let mut text = String::from("response\n");
    let outcome = attempt.error_kind.map_or("success", |kind| kind.as_str());
    match attempt.status_code {
        Some(code) => {
            let _ = writeln!(text, "  {code} {outcome} in {} ms", attempt.duration_ms);
        }
        None => {
            let _ = writeln!(text, "  {outcome} after {} ms", attempt.duration_ms);
        }
    }
    if let Some(error) = &attempt.error {
        let _ = writeln!(text, "  error: {error}");
    }
    if attempt.response_body.is_empty() {
        text.push_str("  (empty body)\n");
    } else {
        text.push('\n');
        for line in attempt.response_body.lines() {
            let _ = writeln!(text, "  {line}");
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use rowhook::event::ErrorKind;

    #[test]
    fn items_must_be_json_objects() {
        assert_eq!(
            parse_item(r#"{"id": 1}"#).ok().map(|row| row.len()),
            Some(1)
        );
        assert!(matches!(parse_item("[1]"), Err(Failure::Configuration(_))));
        assert!(matches!(
            parse_item("{id: 1"),
            Err(Failure::Configuration(_))
        ));
    }

    #[test]
    fn responses_read_well() {
        let attempt = Attempt {
            number: 1,
            started_at_ms: 0,
            duration_ms: 7,
            status_code: Some(503),
            error_kind: Some(ErrorKind::Status),
            error: Some("HTTP 503 Service Unavailable".into()),
            response_body: "busy".into(),
        };
        assert_eq!(
            response_text(&attempt),
            "response\n  503 status in 7 ms\n  error: HTTP 503 Service Unavailable\n\n  busy\n"
        );
    }
}
