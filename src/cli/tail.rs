//! `rowhook tail`: captured changes as JSON lines. Replication mode reads a temporary slot
//! and acknowledges only that; notify mode reads new outbox rows as they arrive and
//! deletes nothing. Either way it disturbs nothing.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use rowhook::capture::Source;
use rowhook::capture::notify::NotifySource;
use rowhook::capture::replication::{ReplicationSource, SlotKind};
use rowhook::capture::{Captured, acknowledgement_channel};
use rowhook::change::{Lsn, TableName};
use rowhook::config::SourceMode;
use rowhook::envelope::envelope;
use tokio::sync::mpsc;

use super::{Failure, database_url, load_config, shutdown_on_signals};

pub(crate) async fn run(path: &Path) -> Result<(), Failure> {
    let config = load_config(path)?;
    let url = database_url(&config)?;
    let models: HashMap<TableName, String> = config
        .models
        .values()
        .map(|model| (model.table.clone(), model.name.clone()))
        .collect();
    let (sender, mut receiver) = mpsc::channel(1024);
    let (acknowledger, acknowledgements) = acknowledgement_channel();
    let (_trigger, shutdown) = shutdown_on_signals();
    let source = match config.source.mode {
        SourceMode::Replication => Source::Replication(ReplicationSource {
            max_row: config.source.max_row,
            url,
            slot: SlotKind::Temporary {
                name: format!("rowhook_tail_{}", std::process::id()),
            },
            publication: config.source.publication.clone(),
            start: Lsn(0),
            status: None,
        }),
        SourceMode::Notify => Source::Notify(NotifySource {
            max_row: config.source.max_row,
            url,
            status: None,
            delete_drained: false,
        }),
    };
    let capture = tokio::spawn(source.run(sender, acknowledgements, shutdown));

    let mut output = std::io::BufWriter::with_capacity(64 * 1024, std::io::stdout());
    while let Some(captured) = receiver.recv().await {
        let written = match captured {
            Captured::Change(change) => match models.get(&change.table) {
                Some(model) => serde_json::to_writer(&mut output, &envelope(&change, model, None))
                    .map_err(std::io::Error::from)
                    .and_then(|()| output.write_all(b"\n")),
                None => Ok(()),
            },
            Captured::Commit(position) => {
                acknowledger.acknowledge(position);
                output.flush()
            }
            // Tailing peeks: it deletes nothing.
            Captured::Drained(_) => Ok(()),
            Captured::Oversized(oversized) => {
                eprintln!(
                    "a {} of {} at {} is {} bytes, larger than source.max_row ({} bytes): not shown",
                    oversized.change.action.as_str(),
                    oversized.change.table,
                    oversized.change.lsn,
                    oversized.bytes,
                    oversized.limit
                );
                Ok(())
            }
        };
        if written.is_err() {
            // The reader went away (a closed pipe): that is the end of tailing, not a failure.
            return Ok(());
        }
    }
    let _ = output.flush();
    capture
        .await
        .context("the capture task failed")?
        .map_err(anyhow::Error::from)?;
    Ok(())
}
