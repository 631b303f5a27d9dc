//! `rowhook events list|show|redeliver`: the event history.
//!
//! The sled store admits one process. When no `rowhook run` holds it, the commands open
//! it themselves; when one does, they ask that service's admin API. Both answer with the
//! typed views of `rowhook::history`, so one printing path serves both.

pub(crate) mod source;
pub(crate) mod text;

use std::path::Path;

use rowhook::event::Status;
use serde::Serialize;

use super::{Failure, load_config};
use source::History;
pub(crate) use text::{detail_text, summary_table};

/// Which events `events list` shows.
pub(crate) struct Filter {
    pub webhook: Option<String>,
    pub status: Option<Status>,
    /// One row's events: its model and key.
    pub row: Option<(String, String)>,
    /// 0 means all.
    pub limit: usize,
}

/// What `events redeliver` queues.
pub(crate) enum Target {
    Event(String),
    Matching { webhook: String, status: Status },
}

fn json<T: Serialize>(value: &T) -> String {
    // The views are plain data: serializing them cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

pub(crate) async fn list(path: &Path, filter: &Filter, as_json: bool) -> Result<(), Failure> {
    let config = load_config(path)?;
    if let Some((model, _)) = &filter.row
        && !config.models.contains_key(model)
    {
        let known: Vec<&str> = config.models.keys().map(String::as_str).collect();
        return Err(Failure::Configuration(vec![format!(
            "--model: no model {model:?} in {} (models: {})",
            config.file.display(),
            known.join(", ")
        )]));
    }
    let history = History::open(&config).await?;
    let result = history.list(filter).await;
    history.close().await?;
    let summaries = result?;
    if as_json {
        println!("{}", json(&summaries));
    } else if summaries.is_empty() {
        println!("no events");
    } else {
        print!("{}", summary_table(&summaries));
    }
    Ok(())
}

pub(crate) async fn show(path: &Path, id: &str, as_json: bool) -> Result<(), Failure> {
    let config = load_config(path)?;
    let history = History::open(&config).await?;
    let result = history.show(id).await;
    history.close().await?;
    let detail = result?;
    if as_json {
        println!("{}", json(&detail));
    } else {
        print!("{}", detail_text(&detail));
    }
    Ok(())
}

pub(crate) async fn redeliver(path: &Path, target: Target) -> Result<(), Failure> {
    let config = load_config(path)?;
    let history = History::open(&config).await?;
    let direct = history.is_direct();
    let result = match &target {
        Target::Event(id) => history
            .redeliver(id)
            .await
            .map(|()| (format!("queued {id} for an immediate attempt"), 1)),
        Target::Matching { webhook, status } => history
            .redeliver_matching(webhook, *status)
            .await
            .map(|done| {
                if done.skipped > 0 {
                    eprintln!(
                        "skipped {} event(s) whose request was never rendered",
                        done.skipped
                    );
                }
                let message = format!(
                    "queued {} {} event(s) of {webhook} for an immediate attempt",
                    done.queued,
                    status.as_str()
                );
                (message, done.queued)
            }),
    };
    // Flush even after a partial bulk redelivery: what was queued must stay queued.
    history.close().await?;
    let (message, queued) = result?;
    println!("{message}");
    if direct && queued > 0 {
        // Said so that nobody waits for a delivery that no process is there to make.
        eprintln!("note: rowhook is not running; the next `rowhook run` sends it");
    }
    Ok(())
}
