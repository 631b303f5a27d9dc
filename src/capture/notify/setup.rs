//! `rowhook setup` for notify mode: the outbox and trigger functions of `sql/notify.sql`,
//! then the two capture triggers on every model's table. Idempotent; checks every table
//! before changing anything.

use std::collections::BTreeSet;

use tokio_postgres::Client;

use super::NOTIFY_SQL;
use crate::capture::setup_error::SetupError;
use crate::change::TableName;
use crate::config::Config;
use crate::postgres::catalog;

/// PostgreSQL 13 brought `xid8` and `pg_current_xact_id()`, which the outbox uses.
pub(crate) const MINIMUM_SERVER_VERSION: i32 = 130_000;

/// A trigger rowhook puts on each model's table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CaptureTrigger {
    pub name: &'static str,
    /// What goes between `CREATE TRIGGER name` and `ON table`.
    pub timing: &'static str,
    pub level: &'static str,
    /// The function's signature, as `to_regprocedure` reads it.
    pub function: &'static str,
    /// Whether the function is called with the model table's schema and name.
    pub names_the_table: bool,
    /// `pg_trigger.tgtype`: row (1), before (2), insert (4), delete (8), update (16).
    pub type_bits: i16,
}

pub(crate) const CAPTURE_TRIGGERS: [CaptureTrigger; 3] = [
    CaptureTrigger {
        name: "rowhook_columns",
        timing: "BEFORE INSERT OR UPDATE OR DELETE",
        level: "FOR EACH STATEMENT",
        function: "rowhook.remember_columns()",
        names_the_table: false,
        type_bits: 2 | 4 | 8 | 16,
    },
    CaptureTrigger {
        name: "rowhook_capture",
        timing: "AFTER INSERT OR UPDATE OR DELETE",
        level: "FOR EACH ROW",
        function: "rowhook.capture()",
        names_the_table: true,
        type_bits: 1 | 4 | 8 | 16,
    },
    CaptureTrigger {
        name: "rowhook_columns_done",
        timing: "AFTER INSERT OR UPDATE OR DELETE",
        level: "FOR EACH STATEMENT",
        function: "rowhook.remember_columns()",
        names_the_table: false,
        type_bits: 4 | 8 | 16,
    },
];

impl CaptureTrigger {
    /// The arguments as `pg_trigger.tgargs` holds them: each followed by a NUL byte.
    fn stored_arguments(&self, table: &TableName) -> Vec<u8> {
        if !self.names_the_table {
            return Vec::new();
        }
        [table.schema.as_bytes(), b"\0", table.name.as_bytes(), b"\0"].concat()
    }

    fn create_statement(&self, table: &TableName) -> String {
        let function = self.function.trim_end_matches("()");
        let arguments = if self.names_the_table {
            format!(
                "{}, {}",
                quote_literal(&table.schema),
                quote_literal(&table.name)
            )
        } else {
            String::new()
        };
        format!(
            "CREATE TRIGGER {} {} ON {} {} EXECUTE FUNCTION {function}({arguments})",
            self.name,
            self.timing,
            table.quoted(),
            self.level
        )
    }
}

fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// How a capture trigger stands on a table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TriggerState {
    Missing,
    /// Present, but firing at other times, calling another function or naming another
    /// table.
    Different,
    /// Present but disabled (or firing only in replica sessions), so nothing is captured.
    Disabled,
    Ready,
}

pub(crate) async fn trigger_state(
    client: &Client,
    table: &TableName,
    trigger: &CaptureTrigger,
) -> Result<TriggerState, tokio_postgres::Error> {
    let row = client
        .query_opt(
            "SELECT t.tgtype, t.tgenabled::text,
                    t.tgfoid = to_regprocedure($4) AND t.tgargs = $5 AS same_call
             FROM pg_trigger t
             JOIN pg_class c ON c.oid = t.tgrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = $1 AND c.relname = $2 AND t.tgname = $3",
            &[
                &table.schema,
                &table.name,
                &trigger.name,
                &trigger.function,
                &trigger.stored_arguments(table),
            ],
        )
        .await?;
    Ok(match row {
        None => TriggerState::Missing,
        Some(row) => {
            let type_bits: i16 = row.get(0);
            let enabled: String = row.get(1);
            let same_call: Option<bool> = row.get(2);
            if type_bits != trigger.type_bits || same_call != Some(true) {
                TriggerState::Different
            } else if enabled == "D" || enabled == "R" {
                TriggerState::Disabled
            } else {
                TriggerState::Ready
            }
        }
    })
}

/// The server's version number, e.g. 150004.
pub(crate) async fn server_version(
    client: &Client,
) -> Result<(i32, String), tokio_postgres::Error> {
    let row = client
        .query_one(
            "SELECT current_setting('server_version_num')::int4, current_setting('server_version')",
            &[],
        )
        .await?;
    Ok((row.get(0), row.get(1)))
}

/// Creates what notify capture needs and returns a line per thing it did or found.
pub async fn setup(client: &Client, config: &Config) -> Result<Vec<String>, SetupError> {
    let (version_number, version) = server_version(client).await?;
    if version_number < MINIMUM_SERVER_VERSION {
        return Err(SetupError::ServerTooOld { version });
    }
    let mut tables = BTreeSet::new();
    for model in config.captured_models() {
        if catalog::table_info(client, &model.table).await?.is_none() {
            return Err(SetupError::TableMissing {
                model: model.name.clone(),
                table: model.table.clone(),
            });
        }
        tables.insert(model.table.clone());
    }

    let mut report = Vec::new();
    client.batch_execute(NOTIFY_SQL).await?;
    report.push("schema rowhook ready: outbox table and trigger functions (sql/notify.sql)".into());
    for table in &tables {
        for trigger in &CAPTURE_TRIGGERS {
            let state = trigger_state(client, table, trigger).await?;
            let create = trigger.create_statement(table);
            match state {
                TriggerState::Ready => {
                    report.push(format!(
                        "trigger {} on {table} already present",
                        trigger.name
                    ));
                }
                TriggerState::Missing => {
                    client.batch_execute(&create).await?;
                    report.push(format!("created trigger {} on {table}", trigger.name));
                }
                TriggerState::Different | TriggerState::Disabled => {
                    let transaction = format!(
                        "BEGIN; DROP TRIGGER {} ON {}; {create}; COMMIT",
                        trigger.name,
                        table.quoted()
                    );
                    client.batch_execute(&transaction).await?;
                    report.push(format!("recreated trigger {} on {table}", trigger.name));
                }
            }
        }
    }
    Ok(report)
}
