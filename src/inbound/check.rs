//! `rowhook check` for inbound endpoints: each table exists, has every column named, and
//! `dedupe` names a column with a unique index or constraint of its own (which
//! `ON CONFLICT` needs). `setup` creates no user tables: the inbox is the user's.

use tokio_postgres::Client;

use super::table::insert_sql;
use crate::capture::Finding;
use crate::config::Config;
use crate::model::describe_table;
use crate::postgres::describe;

pub async fn check_inbound(client: &Client, config: &Config) -> Vec<Finding> {
    let Some(inbound) = &config.inbound else {
        return Vec::new();
    };
    let mut findings = Vec::new();
    for endpoint in &inbound.endpoints {
        let name = &endpoint.name;
        let shape = match describe_table(client, &endpoint.table).await {
            Ok(Some(shape)) => shape,
            Ok(None) => {
                findings.push(Finding::error(format!(
                    "inbound endpoint {name:?}: table {} does not exist (create it; `setup` does not)",
                    endpoint.table
                )));
                continue;
            }
            Err(error) => {
                findings.push(Finding::error(format!(
                    "inbound endpoint {name:?}: cannot read table {}: {}",
                    endpoint.table,
                    describe(&error)
                )));
                continue;
            }
        };
        if let Err(reason) = insert_sql(endpoint, &shape) {
            findings.push(Finding::error(format!(
                "inbound endpoint {name:?}: {reason}"
            )));
            continue;
        }
        if let Some(dedupe) = &endpoint.dedupe {
            let unique = client
                .query_opt(
                    "SELECT 1 FROM pg_catalog.pg_index i
                     JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
                     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                     JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = i.indkey[0]
                     WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = $3
                       AND i.indisunique AND i.indnkeyatts = 1 AND i.indpred IS NULL",
                    &[&endpoint.table.schema, &endpoint.table.name, dedupe],
                )
                .await;
            match unique {
                Ok(Some(_)) => {}
                Ok(None) => {
                    findings.push(Finding::error(format!(
                        "inbound endpoint {name:?}: dedupe column {dedupe:?} of {} has no unique \
                         index of its own (CREATE UNIQUE INDEX ON {} ({dedupe}))",
                        endpoint.table,
                        endpoint.table.quoted()
                    )));
                    continue;
                }
                Err(error) => {
                    findings.push(Finding::error(format!(
                        "inbound endpoint {name:?}: cannot read indexes: {}",
                        describe(&error)
                    )));
                    continue;
                }
            }
        }
        findings.push(Finding::ok(format!(
            "inbound endpoint {name:?} writes to {} ({} column(s){})",
            endpoint.table,
            endpoint.columns.len(),
            if endpoint.dedupe.is_some() {
                ", deduplicated"
            } else {
                ""
            }
        )));
    }
    findings
}
