//! `rowhook check` against the database for replication mode: everything `run` will need,
//! each reported as a finding an operator can act on.

use tokio_postgres::Client;

use super::wire::ReplicationConnection;
use crate::capture::finding::Finding;
use crate::config::Config;
use crate::postgres::DatabaseUrl;
use crate::postgres::catalog::{self, ReplicaIdentity};
use crate::postgres::describe;

pub async fn check(client: &Client, url: &DatabaseUrl, config: &Config) -> Vec<Finding> {
    let mut findings = Vec::new();
    if let Err(error) = check_catalog(client, config, &mut findings).await {
        findings.push(Finding::error(format!(
            "cannot query the database: {}",
            describe(&error)
        )));
    }
    match ReplicationConnection::connect(url, "rowhook check").await {
        Ok(mut connection) => {
            match connection.simple_query("IDENTIFY_SYSTEM").await {
                Ok(system) => findings.push(Finding::ok(format!(
                    "replication connection works (timeline {}, WAL at {})",
                    system.first("timeline").unwrap_or("?"),
                    system.first("xlogpos").unwrap_or("?")
                ))),
                Err(error) => findings.push(Finding::error(format!(
                    "replication connection refused IDENTIFY_SYSTEM: {error}"
                ))),
            }
            connection.terminate().await;
        }
        Err(error) => findings.push(Finding::error(format!(
            "cannot open a replication connection: {error}"
        ))),
    }
    findings
}

async fn check_catalog(
    client: &Client,
    config: &Config,
    findings: &mut Vec<Finding>,
) -> Result<(), tokio_postgres::Error> {
    let wal_level: String = client.query_one("SHOW wal_level", &[]).await?.get(0);
    if wal_level == "logical" {
        findings.push(Finding::ok("wal_level is logical"));
    } else {
        findings.push(Finding::error(format!(
            "wal_level is {wal_level}; logical replication needs wal_level = logical \
             (set it in postgresql.conf and restart PostgreSQL), or use mode = \"notify\""
        )));
    }
    let may_replicate: bool = client
        .query_one(
            "SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await?
        .get(0);
    if may_replicate {
        findings.push(Finding::ok("the role may use replication"));
    } else {
        findings.push(Finding::error(
            "the role has no REPLICATION attribute: ALTER ROLE … WITH REPLICATION",
        ));
    }

    let publication = &config.source.publication;
    let published = catalog::published_tables(client, publication).await?;
    if published.is_none() {
        findings.push(Finding::error(format!(
            "publication {publication:?} does not exist: run `rowhook setup`"
        )));
    }
    for model in config.captured_models() {
        let table = &model.table;
        let Some(info) = catalog::table_info(client, table).await? else {
            findings.push(Finding::error(format!(
                "model {:?}: table {table} does not exist",
                model.name
            )));
            continue;
        };
        match (info.replica_identity, info.has_primary_key) {
            (ReplicaIdentity::Full, _) => findings.push(Finding::ok(format!(
                "model {:?}: {table} has REPLICA IDENTITY FULL (old rows known)",
                model.name
            ))),
            _ if info.identifies_rows() => findings.push(Finding::ok(format!(
                "model {:?}: {table} identifies rows by key (old rows carry only the key; \
                 `setup --replica-identity-full` gives whole old rows)",
                model.name
            ))),
            _ => findings.push(Finding::error(format!(
                "model {:?}: {table} has no primary key and no replica identity; UPDATE and \
                 DELETE would fail once published: add a primary key or run \
                 `rowhook setup --replica-identity-full`",
                model.name
            ))),
        }
        if let Some(published) = &published {
            if published.contains(table) {
                findings.push(Finding::ok(format!(
                    "model {:?}: {table} is in publication {publication:?}",
                    model.name
                )));
            } else {
                findings.push(Finding::error(format!(
                    "model {:?}: {table} is not in publication {publication:?}: run `rowhook setup`",
                    model.name
                )));
            }
        }
    }

    let slot = &config.source.slot;
    match catalog::slot_info(client, slot).await? {
        None => findings.push(Finding::error(format!(
            "replication slot {slot:?} does not exist: run `rowhook setup`"
        ))),
        Some(info) if info.plugin != "pgoutput" => findings.push(Finding::error(format!(
            "replication slot {slot:?} uses plugin {:?}; rowhook needs pgoutput",
            info.plugin
        ))),
        Some(info) => {
            let database = catalog::current_database(client).await?;
            if info.database == database {
                findings.push(Finding::ok(format!("replication slot {slot:?} is ready")));
            } else {
                findings.push(Finding::error(format!(
                    "replication slot {slot:?} belongs to database {:?}, not {database:?}",
                    info.database
                )));
            }
        }
    }
    Ok(())
}
