//! `rowhook webhooks list|pause NAME|resume NAME` (CONTRACT §9): the configured webhooks
//! with their counts and paused state, and pausing delivery. Like `events`, through the
//! store itself when no `rowhook run` holds it, else through the service's admin API; the
//! pause is kept in the store either way, so it survives restarts.

use std::path::Path;

use rowhook::history::WebhookSummary;

use super::events::source::History;
use super::send_test::unknown_webhook;
use super::{Failure, load_config};

pub(crate) async fn list(path: &Path, as_json: bool) -> Result<(), Failure> {
    let config = load_config(path)?;
    let history = History::open(&config).await?;
    let result = history.webhooks().await;
    history.close().await?;
    let webhooks = result?;
    if as_json {
        println!("{}", serde_json::to_string(&webhooks).unwrap_or_default());
    } else {
        print!("{}", table(&webhooks));
    }
    Ok(())
}

pub(crate) async fn set_paused(path: &Path, name: &str, paused: bool) -> Result<(), Failure> {
    let config = load_config(path)?;
    if config.webhook(name).is_none() {
        return Err(unknown_webhook(&config, name));
    }
    let history = History::open(&config).await?;
    let result = history.set_paused(name, paused).await;
    history.close().await?;
    if !result? {
        return Err(Failure::Configuration(vec![format!(
            "error: the running service has no webhook named {name:?} (was the config changed since it started?)"
        )]));
    }
    if paused {
        println!(
            "{name}: paused — its events are created and wait until `rowhook webhooks resume {name}`"
        );
    } else {
        println!("{name}: delivering again");
    }
    Ok(())
}

fn table(webhooks: &[WebhookSummary]) -> String {
    if webhooks.is_empty() {
        return "no webhooks\n".to_string();
    }
    let mut text = format!(
        "{:<24} {:<16} {:<10} {:>9} {:>10} {:>7}\n",
        "webhook", "model", "state", "pending", "delivered", "failed"
    );
    for webhook in webhooks {
        let state = match (webhook.active, webhook.paused) {
            (false, _) => "inactive",
            (true, true) => "paused",
            (true, false) => "delivering",
        };
        text.push_str(&format!(
            "{:<24} {:<16} {:<10} {:>9} {:>10} {:>7}\n",
            webhook.name,
            webhook.model,
            state,
            webhook.counts.pending,
            webhook.counts.delivered,
            webhook.counts.failed
        ));
    }
    text
}
