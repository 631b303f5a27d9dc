//! `rowhook check` for relations: every model a relation names has its table, the key
//! columns exist, their types compare, and a has-many column has an index.

use tokio_postgres::Client;

use super::table::{TableShape, describe_table};
use crate::capture::Finding;
use crate::config::{Config, RelationConfig, RelationKind};
use crate::postgres::describe;

/// One finding per relation (or per problem with it), and one per model used only in
/// relations whose table is missing.
pub async fn check_relations(client: &Client, config: &Config) -> Vec<Finding> {
    let mut findings = Vec::new();
    if let Err(error) = check(client, config, &mut findings).await {
        findings.push(Finding::error(format!(
            "cannot check relations: {}",
            describe(&error)
        )));
    }
    findings
}

async fn check(
    client: &Client,
    config: &Config,
    findings: &mut Vec<Finding>,
) -> Result<(), tokio_postgres::Error> {
    for model in config.models.values() {
        if model.relations.is_empty() {
            continue;
        }
        let Some(parent) = describe_table(client, &model.table).await? else {
            // Reported by the capture checks for captured models; say it for the others.
            findings.push(Finding::error(format!(
                "model {:?}: table {} does not exist",
                model.name, model.table
            )));
            continue;
        };
        for relation in model.relations.values() {
            let Some(related_model) = config.models.get(&relation.model) else {
                continue; // refused when the config was read
            };
            let Some(related) = describe_table(client, &related_model.table).await? else {
                findings.push(Finding::error(format!(
                    "model {:?}: relation {:?}: table {} of model {:?} does not exist",
                    model.name, relation.name, related_model.table, relation.model
                )));
                continue;
            };
            let before = findings.len();
            check_relation(client, &model.name, &parent, relation, &related, findings).await?;
            if findings.len() == before {
                findings.push(Finding::ok(format!(
                    "model {:?}: relation {:?} to {:?} is ready",
                    model.name, relation.name, relation.model
                )));
            }
        }
    }
    Ok(())
}

async fn check_relation(
    client: &Client,
    model: &str,
    parent: &TableShape,
    relation: &RelationConfig,
    related: &TableShape,
    findings: &mut Vec<Finding>,
) -> Result<(), tokio_postgres::Error> {
    let prefix = format!("model {model:?}: relation {:?}", relation.name);
    if parent.column(&relation.name).is_some() {
        findings.push(Finding::warning(format!(
            "{prefix}: {} has a column of that name too; in `item` the relation takes its place",
            parent.table
        )));
    }
    let (from_table, from_column, to_table, to_column) = match &relation.kind {
        RelationKind::BelongsTo { key } => (parent, key.as_str(), related, related.single_key()),
        RelationKind::HasMany { foreign_key, .. } => {
            (related, foreign_key.as_str(), parent, parent.single_key())
        }
    };
    let Some(to_column) = to_column else {
        findings.push(Finding::error(format!(
            "{prefix}: {} needs a primary key of exactly one column",
            to_table.table
        )));
        return Ok(());
    };
    let Some(from) = from_table.column(from_column) else {
        findings.push(Finding::error(format!(
            "{prefix}: {} has no column {from_column:?}",
            from_table.table
        )));
        return Ok(());
    };
    if let RelationKind::HasMany {
        order_by: Some(order_by),
        ..
    } = &relation.kind
        && related.column(&order_by.column).is_none()
    {
        findings.push(Finding::error(format!(
            "{prefix}: order_by: {} has no column {:?}",
            related.table, order_by.column
        )));
    }
    let comparable: bool = client
        .query_one(
            // Domains compare as their base types; the keys compare when the bases are
            // one type, or an `=` operator or an implicit cast joins them.
            "WITH RECURSIVE walk(start, oid) AS (
                 SELECT s, s FROM unnest(ARRAY[$1::oid, $2::oid]) AS s
                 UNION
                 SELECT walk.start, t.typbasetype FROM walk
                 JOIN pg_catalog.pg_type t ON t.oid = walk.oid AND t.typtype = 'd'
             ), base AS (
                 SELECT w.start, w.oid FROM walk w
                 JOIN pg_catalog.pg_type t ON t.oid = w.oid AND t.typtype <> 'd'
             )
             SELECT coalesce(bool_or(
                 a.oid = b.oid
                 OR EXISTS (SELECT 1 FROM pg_catalog.pg_operator o
                            WHERE o.oprname = '=' AND o.oprleft = a.oid AND o.oprright = b.oid)
                 OR EXISTS (SELECT 1 FROM pg_catalog.pg_cast c
                            WHERE c.castcontext = 'i'
                              AND ((c.castsource = a.oid AND c.casttarget = b.oid)
                                OR (c.castsource = b.oid AND c.casttarget = a.oid)))
             ), false)
             FROM base a, base b WHERE a.start = $1 AND b.start = $2",
            &[&from.type_oid, &to_column.type_oid],
        )
        .await?
        .get(0);
    if !comparable {
        findings.push(Finding::error(format!(
            "{prefix}: {}.{} is {} but {}.{} is {}: the keys cannot be compared",
            from_table.table,
            from.name,
            from.type_name,
            to_table.table,
            to_column.name,
            to_column.type_name
        )));
    }
    if matches!(relation.kind, RelationKind::HasMany { .. }) {
        let indexed: bool = client
            .query_one(
                "SELECT EXISTS (
                     SELECT 1 FROM pg_catalog.pg_index i
                     JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                     WHERE i.indrelid = $1::text::regclass AND a.attname = $2)",
                &[&related.table.quoted(), &from.name],
            )
            .await?
            .get(0);
        if !indexed {
            findings.push(Finding::warning(format!(
                "{prefix}: no index on {} starts with {:?}; every lookup scans the table \
                 (CREATE INDEX ON {} ({}))",
                related.table,
                from.name,
                related.table.quoted(),
                crate::change::quote_identifier(&from.name)
            )));
        }
    }
    Ok(())
}
