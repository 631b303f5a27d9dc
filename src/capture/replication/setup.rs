//! `rowhook setup` for replication mode: the publication over the models' tables and the
//! logical slot. Idempotent; checks every table before changing anything.

use std::collections::BTreeSet;

use tokio_postgres::Client;

use crate::capture::setup_error::SetupError;
use crate::change::{TableName, quote_identifier};
use crate::config::Config;
use crate::postgres::catalog;

/// `server_version_num` from which slots can be created with `failover = true`.
const FAILOVER_SLOTS_FROM: i32 = 170_000;

/// Creates what replication capture needs and returns a line per thing it did or found.
pub async fn setup(
    client: &Client,
    config: &Config,
    replica_identity_full: bool,
) -> Result<Vec<String>, SetupError> {
    let mut report = Vec::new();
    let mut tables = Vec::new();
    let mut any_partitioned = false;
    for model in config.captured_models() {
        let info = catalog::table_info(client, &model.table)
            .await?
            .ok_or_else(|| SetupError::TableMissing {
                model: model.name.clone(),
                table: model.table.clone(),
            })?;
        let wants_full =
            replica_identity_full && info.replica_identity != catalog::ReplicaIdentity::Full;
        if !wants_full && !info.identifies_rows() {
            return Err(SetupError::NoReplicaIdentity {
                model: model.name.clone(),
                table: model.table.clone(),
            });
        }
        any_partitioned |= info.partitioned;
        tables.push((model.table.clone(), wants_full));
    }

    for (table, wants_full) in &tables {
        if *wants_full {
            client
                .batch_execute(&format!(
                    "ALTER TABLE {} REPLICA IDENTITY FULL",
                    table.quoted()
                ))
                .await?;
            report.push(format!("set REPLICA IDENTITY FULL on {table}"));
        }
    }

    let publication = &config.source.publication;
    let wanted: BTreeSet<TableName> = tables.into_iter().map(|(table, _)| table).collect();
    // A partitioned model's changes must arrive under its own name, not its partitions'
    // (which no model names): publish through the root (PostgreSQL 13+).
    let through_root = if any_partitioned {
        ", publish_via_partition_root = true"
    } else {
        ""
    };
    if any_partitioned && publishes_partitions_by_their_names(client, publication).await? {
        client
            .batch_execute(&format!(
                "ALTER PUBLICATION {} SET (publish_via_partition_root = true)",
                quote_identifier(publication)
            ))
            .await?;
        report.push(format!(
            "publication {publication:?} now publishes partitions under their root table"
        ));
    }
    match catalog::published_tables(client, publication).await? {
        None => {
            let list = table_list(&wanted);
            let target = if list.is_empty() {
                String::new()
            } else {
                format!(" FOR TABLE {list}")
            };
            client
                .batch_execute(&format!(
                    "CREATE PUBLICATION {}{target} WITH (publish = 'insert, update, delete'{through_root})",
                    quote_identifier(publication)
                ))
                .await?;
            report.push(format!(
                "created publication {publication:?} over {} table(s)",
                wanted.len()
            ));
        }
        Some(published) => {
            let missing: BTreeSet<TableName> = wanted.difference(&published).cloned().collect();
            if missing.is_empty() {
                report.push(format!(
                    "publication {publication:?} already covers every model"
                ));
            } else {
                client
                    .batch_execute(&format!(
                        "ALTER PUBLICATION {} ADD TABLE {}",
                        quote_identifier(publication),
                        table_list(&missing)
                    ))
                    .await?;
                report.push(format!(
                    "added {} table(s) to publication {publication:?}",
                    missing.len()
                ));
            }
        }
    }

    let slot = &config.source.slot;
    let database = catalog::current_database(client).await?;
    match catalog::slot_info(client, slot).await? {
        None => {
            // PostgreSQL 17 can keep a slot across a failover to a standby that syncs
            // slots (`sync_replication_slots`); before that a failover loses it.
            let version: i32 = client
                .query_one("SELECT current_setting('server_version_num')::int", &[])
                .await?
                .get(0);
            let failover = version >= FAILOVER_SLOTS_FROM;
            let sql = if failover {
                "SELECT pg_create_logical_replication_slot($1, 'pgoutput', false, false, true)"
            } else {
                "SELECT pg_create_logical_replication_slot($1, 'pgoutput')"
            };
            client.execute(sql, &[slot]).await?;
            report.push(if failover {
                format!("created logical replication slot {slot:?} (failover = true)")
            } else {
                format!("created logical replication slot {slot:?}")
            });
        }
        Some(info) if info.plugin != "pgoutput" => {
            return Err(SetupError::SlotPlugin {
                slot: slot.clone(),
                plugin: info.plugin,
            });
        }
        Some(info) if info.database != database => {
            return Err(SetupError::SlotDatabase {
                slot: slot.clone(),
                database: info.database,
                expected: database,
            });
        }
        Some(_) => report.push(format!("replication slot {slot:?} already exists")),
    }
    Ok(report)
}

/// Whether the publication exists and sends partitions' changes under their own names.
async fn publishes_partitions_by_their_names(
    client: &Client,
    publication: &str,
) -> Result<bool, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT NOT pubviaroot FROM pg_publication WHERE pubname = $1",
            &[&publication],
        )
        .await?;
    Ok(row.is_some_and(|row| row.get(0)))
}

fn table_list(tables: &BTreeSet<TableName>) -> String {
    tables
        .iter()
        .map(TableName::quoted)
        .collect::<Vec<_>>()
        .join(", ")
}
