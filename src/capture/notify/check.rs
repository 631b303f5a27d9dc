//! `rowhook check` against the database for notify mode: the outbox, the trigger
//! functions, the role's rights, and both capture triggers on every model's table.

use tokio_postgres::Client;

use super::setup::{
    CAPTURE_TRIGGERS, MINIMUM_SERVER_VERSION, TriggerState, server_version, trigger_state,
};
use crate::capture::finding::Finding;
use crate::config::Config;
use crate::postgres::catalog;
use crate::postgres::describe;

const FUNCTIONS: [&str; 3] = [
    "rowhook.capture()",
    "rowhook.remember_columns()",
    "rowhook.columns_of(oid)",
];

pub async fn check(client: &Client, config: &Config) -> Vec<Finding> {
    let mut findings = Vec::new();
    if let Err(error) = check_catalog(client, config, &mut findings).await {
        findings.push(Finding::error(format!(
            "cannot query the database: {}",
            describe(&error)
        )));
    }
    findings
}

async fn check_catalog(
    client: &Client,
    config: &Config,
    findings: &mut Vec<Finding>,
) -> Result<(), tokio_postgres::Error> {
    let (version_number, version) = server_version(client).await?;
    if version_number >= MINIMUM_SERVER_VERSION {
        findings.push(Finding::ok(format!(
            "PostgreSQL {version} supports notify mode"
        )));
    } else {
        findings.push(Finding::error(format!(
            "PostgreSQL {version} is too old: notify mode needs 13 or newer"
        )));
    }
    let outbox_exists: bool = client
        .query_one("SELECT to_regclass('rowhook.outbox') IS NOT NULL", &[])
        .await?
        .get(0);
    if outbox_exists {
        let row = client
            .query_one(
                "SELECT has_table_privilege('rowhook.outbox', 'SELECT')
                        AND has_table_privilege('rowhook.outbox', 'DELETE'),
                        (SELECT count(*) FROM rowhook.outbox)",
                &[],
            )
            .await;
        match row {
            Ok(row) if row.get::<_, bool>(0) => {
                let waiting: i64 = row.get(1);
                findings.push(Finding::ok(format!(
                    "outbox rowhook.outbox is ready ({waiting} change(s) waiting)"
                )));
            }
            _ => findings.push(Finding::error(
                "the role may not read and delete rows of rowhook.outbox: connect as the \
                 role that ran `rowhook setup`, or GRANT USAGE ON SCHEMA rowhook and \
                 GRANT SELECT, DELETE ON rowhook.outbox, INSERT ON rowhook.rejected",
            )),
        }
    } else {
        findings.push(Finding::error(
            "the outbox rowhook.outbox does not exist: run `rowhook setup`",
        ));
    }
    let rejected_exists: bool = client
        .query_one("SELECT to_regclass('rowhook.rejected') IS NOT NULL", &[])
        .await?
        .get(0);
    if !rejected_exists {
        findings.push(Finding::error(
            "the table rowhook.rejected does not exist: run `rowhook setup`",
        ));
    } else if let Ok(row) = client
        .query_one("SELECT count(*) FROM rowhook.rejected", &[])
        .await
    {
        let rejected: i64 = row.get(0);
        if rejected > 0 {
            findings.push(Finding::warning(format!(
                "{rejected} outbox row(s) could not be read and were set aside in \
                 rowhook.rejected (see its reason column)"
            )));
        }
    }
    for function in FUNCTIONS {
        let exists: bool = client
            .query_one("SELECT to_regprocedure($1) IS NOT NULL", &[&function])
            .await?
            .get(0);
        if !exists {
            findings.push(Finding::error(format!(
                "function {function} does not exist: run `rowhook setup`"
            )));
        }
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
        if !info.has_primary_key {
            findings.push(Finding::warning(format!(
                "model {:?}: {table} has no primary key (capture works; `send-test` picks \
                 the newest row by primary key)",
                model.name
            )));
        }
        for trigger in &CAPTURE_TRIGGERS {
            let name = trigger.name;
            match trigger_state(client, table, trigger).await? {
                TriggerState::Ready => findings.push(Finding::ok(format!(
                    "model {:?}: {table} has trigger {name}",
                    model.name
                ))),
                TriggerState::Missing => findings.push(Finding::error(format!(
                    "model {:?}: {table} has no trigger {name}: run `rowhook setup`",
                    model.name
                ))),
                TriggerState::Different => findings.push(Finding::error(format!(
                    "model {:?}: trigger {name} on {table} is not rowhook's: run `rowhook setup` \
                     to recreate it",
                    model.name
                ))),
                TriggerState::Disabled => findings.push(Finding::error(format!(
                    "model {:?}: trigger {name} on {table} is disabled, so changes are not \
                     captured: run `rowhook setup` (or ALTER TABLE … ENABLE TRIGGER {name})",
                    model.name
                ))),
            }
        }
    }
    Ok(())
}
