//! The slot a stream reads: where it starts, and freeing it from this instance's own
//! abandoned session.

use tracing::warn;

use super::error::CaptureError;
use super::wire::ReplicationConnection;
use crate::change::{Lsn, quote_identifier};

/// Which slot to read.
#[derive(Clone, Debug)]
pub enum SlotKind {
    /// A slot made by `rowhook setup`; positions survive restarts.
    Persistent { name: String },
    /// A slot that lives as long as the connection (`rowhook tail`); no reconnect.
    Temporary { name: String },
}

impl SlotKind {
    pub(super) fn name(&self) -> &str {
        match self {
            SlotKind::Persistent { name } | SlotKind::Temporary { name } => name,
        }
    }

    /// Where streaming starts on `connection`. A persistent slot starts at the later of
    /// its confirmed position and `confirmed` (what this run has confirmed already); a
    /// temporary one is created here and starts at its consistent point.
    pub(super) async fn start(
        &self,
        connection: &mut ReplicationConnection,
        confirmed: Lsn,
        abandoned: Option<i32>,
    ) -> Result<Lsn, CaptureError> {
        match self {
            SlotKind::Persistent { name } => {
                let slot_position = persistent_slot_position(connection, name, abandoned).await?;
                Ok(confirmed.max(slot_position))
            }
            SlotKind::Temporary { name } => {
                let sql = format!(
                    "CREATE_REPLICATION_SLOT {} TEMPORARY LOGICAL pgoutput (SNAPSHOT 'nothing')",
                    quote_identifier(name)
                );
                let created = connection.simple_query(&sql).await?;
                parse_lsn(created.first("consistent_point").unwrap_or_default())
            }
        }
    }
}

/// The slot's confirmed position. A slot still held by `abandoned`, this instance's own
/// connection given up as dead, is freed first (`pg_terminate_backend`; a role may end
/// its own sessions), so that the new connection need not wait for the server to notice.
async fn persistent_slot_position(
    connection: &mut ReplicationConnection,
    slot: &str,
    abandoned: Option<i32>,
) -> Result<Lsn, CaptureError> {
    let slot_literal = slot.replace('\'', "''");
    if let Some(pid) = abandoned {
        let sql = format!(
            "SELECT pg_terminate_backend(active_pid) AS ended FROM pg_replication_slots \
             WHERE slot_name = '{slot_literal}' AND active_pid = {pid}"
        );
        let ended = connection.simple_query(&sql).await?;
        if ended.first("ended") == Some("t") {
            warn!(
                pid,
                "ended this instance's previous replication session, which still held the slot"
            );
            // The process ends a moment after the signal; the slot is free once it has.
            let wait = format!(
                "SELECT count(*) AS held FROM pg_replication_slots \
                 WHERE slot_name = '{slot_literal}' AND active_pid = {pid}"
            );
            for _ in 0..50 {
                if connection.simple_query(&wait).await?.first("held") == Some("0") {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
    let sql = format!(
        "SELECT plugin, confirmed_flush_lsn::text AS confirmed FROM pg_replication_slots \
         WHERE slot_name = '{slot_literal}' AND database = current_database()"
    );
    let found = connection.simple_query(&sql).await?;
    let Some(plugin) = found.first("plugin") else {
        return Err(CaptureError::SlotMissing {
            slot: slot.to_string(),
        });
    };
    if plugin != "pgoutput" {
        return Err(CaptureError::WrongPlugin {
            slot: slot.to_string(),
            plugin: plugin.to_string(),
        });
    }
    parse_lsn(found.first("confirmed").unwrap_or("0/0"))
}

fn parse_lsn(text: &str) -> Result<Lsn, CaptureError> {
    text.parse()
        .map_err(|_| CaptureError::InvalidLsn(text.to_string()))
}
