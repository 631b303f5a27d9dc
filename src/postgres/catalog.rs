//! Questions to the system catalog that `setup` and `check` both ask.

use std::collections::BTreeSet;

use tokio_postgres::Client;

use crate::change::TableName;

/// How a table identifies its rows in the WAL (`pg_class.relreplident`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReplicaIdentity {
    /// The primary key, if there is one.
    Default,
    Full,
    Index,
    Nothing,
}

#[derive(Clone, Debug)]
pub(crate) struct TableInfo {
    pub replica_identity: ReplicaIdentity,
    pub has_primary_key: bool,
    /// A partitioned table: its rows live in partitions.
    pub partitioned: bool,
}

impl TableInfo {
    /// Whether UPDATE and DELETE keep working once the table is published: PostgreSQL
    /// refuses them on a published table that has no way to identify rows.
    pub(crate) fn identifies_rows(&self) -> bool {
        match self.replica_identity {
            ReplicaIdentity::Default => self.has_primary_key,
            ReplicaIdentity::Full | ReplicaIdentity::Index => true,
            ReplicaIdentity::Nothing => false,
        }
    }
}

pub(crate) async fn table_info(
    client: &Client,
    table: &TableName,
) -> Result<Option<TableInfo>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT c.relreplident::text AS identity, c.relkind = 'p' AS partitioned,
                    EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
                        AS has_primary_key
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
            &[&table.schema, &table.name],
        )
        .await?;
    Ok(row.map(|row| {
        let identity: String = row.get("identity");
        TableInfo {
            replica_identity: match identity.as_str() {
                "f" => ReplicaIdentity::Full,
                "i" => ReplicaIdentity::Index,
                "n" => ReplicaIdentity::Nothing,
                _ => ReplicaIdentity::Default,
            },
            has_primary_key: row.get("has_primary_key"),
            partitioned: row.get("partitioned"),
        }
    }))
}

/// The publication's tables, or `None` when it does not exist. A publication `FOR ALL
/// TABLES` lists every table, which is what it means.
pub(crate) async fn published_tables(
    client: &Client,
    publication: &str,
) -> Result<Option<BTreeSet<TableName>>, tokio_postgres::Error> {
    let exists = client
        .query_opt(
            "SELECT 1 FROM pg_publication WHERE pubname = $1",
            &[&publication],
        )
        .await?
        .is_some();
    if !exists {
        return Ok(None);
    }
    let rows = client
        .query(
            "SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1",
            &[&publication],
        )
        .await?;
    Ok(Some(
        rows.iter()
            .map(|row| TableName::new(row.get::<_, String>(0), row.get::<_, String>(1)))
            .collect(),
    ))
}

#[derive(Clone, Debug)]
pub(crate) struct SlotInfo {
    pub plugin: String,
    pub database: String,
}

pub(crate) async fn slot_info(
    client: &Client,
    slot: &str,
) -> Result<Option<SlotInfo>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT coalesce(plugin::text, '') AS plugin, coalesce(database::text, '') AS database
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&slot],
        )
        .await?;
    Ok(row.map(|row| SlotInfo {
        plugin: row.get("plugin"),
        database: row.get("database"),
    }))
}

pub(crate) async fn current_database(client: &Client) -> Result<String, tokio_postgres::Error> {
    Ok(client
        .query_one("SELECT current_database()::text", &[])
        .await?
        .get(0))
}
