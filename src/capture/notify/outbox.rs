//! One outbox row as the trigger wrote it, and the change it stands for. Pure: the same
//! row always gives the same change, so a row drained twice makes the same events.

use serde_json::Value;

use crate::capture::value::{self, RecordError, TypeCatalog, parse_record, type_oid};
use crate::change::{Action, Change, Lsn, OversizedRow, Position, Row, TableName};

/// The columns of `rowhook.outbox`, as read.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct OutboxRow {
    pub id: i64,
    /// The writing transaction's `xid8`.
    pub transaction_id: u64,
    pub wal_position: Lsn,
    pub changed_at_micros: i64,
    pub table: TableName,
    pub action: String,
    pub item: String,
    pub old_item: Option<String>,
    /// A text[] literal of `type_oid:name`, one per column.
    pub columns: String,
    /// Bytes of `item` and `old_item` together; over `source.max_row` both were left on
    /// the server (read as empty).
    pub size: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxRowError {
    #[error("outbox row {id}: unknown action {action:?}")]
    Action { id: i64, action: String },
    #[error("outbox row {id}: unreadable column list {columns:?}")]
    Columns { id: i64, columns: String },
    #[error("outbox row {id}: unreadable {which}: {source}")]
    Record {
        id: i64,
        which: &'static str,
        #[source]
        source: RecordError,
    },
    #[error("outbox row {id}: {which} has {values} values for {columns} columns")]
    Shape {
        id: i64,
        which: &'static str,
        values: usize,
        columns: usize,
    },
    #[error("outbox row {id}: an update without its old row")]
    MissingOld { id: i64 },
}

/// A column as the trigger saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Column {
    type_oid: u32,
    name: String,
}

impl OutboxRow {
    /// The row's action, which the trigger writes as text.
    fn parsed_action(&self) -> Result<Action, OutboxRowError> {
        self.action
            .parse::<Action>()
            .map_err(|()| OutboxRowError::Action {
                id: self.id,
                action: self.action.clone(),
            })
    }

    /// The change this row records: the same envelope and the same JSON values as
    /// replication mode with `REPLICA IDENTITY FULL` gives for the same change (the
    /// trigger always sees the whole old row).
    pub(crate) fn to_change(&self, types: &TypeCatalog) -> Result<Change, OutboxRowError> {
        let action = self.parsed_action()?;
        let columns = self.parse_columns()?;
        let row = self.row(types, &columns, "row", &self.item)?;
        let (item, old, changed) = match action {
            Action::Create | Action::Read => (row, None, None),
            Action::Delete => (row.clone(), Some(row), None),
            Action::Update => {
                let old_text = self
                    .old_item
                    .as_deref()
                    .ok_or(OutboxRowError::MissingOld { id: self.id })?;
                let old = self.row(types, &columns, "old row", old_text)?;
                let changed = row
                    .iter()
                    .filter(|(name, value)| old.get(name.as_str()) != Some(value))
                    .map(|(name, _)| name.clone())
                    .collect();
                (row, Some(old), Some(changed))
            }
        };
        Ok(self.change(action, item, old, changed))
    }

    /// The change of a row too large to read: everything but its row (`item` empty).
    pub(crate) fn to_oversized(&self, limit: u64) -> Result<OversizedRow, OutboxRowError> {
        let action = self.parsed_action()?;
        Ok(OversizedRow {
            change: self.change(action, Row::new(), None, None),
            bytes: u64::try_from(self.size).unwrap_or(0),
            limit,
        })
    }

    /// The change of this row with these values; the rest comes from the row's columns.
    fn change(
        &self,
        action: Action,
        item: Row,
        old: Option<Row>,
        changed: Option<Vec<String>>,
    ) -> Change {
        Change {
            action,
            table: self.table.clone(),
            item,
            old,
            changed,
            lsn: self.wal_position,
            position: self.position(),
            commit_time_micros: self.changed_at_micros,
        }
    }

    /// Stable and unique: the transaction id is never reused in a cluster's life, and the
    /// outbox ids within one transaction differ (a transaction would need 2^32 changes to
    /// repeat the low half). Even a recreated outbox, restarting its ids, makes new ids.
    fn position(&self) -> Position {
        Position {
            transaction: self.transaction_id,
            sequence: (self.id as u64 & 0xFFFF_FFFF) as u32,
        }
    }

    fn parse_columns(&self) -> Result<Vec<Column>, OutboxRowError> {
        let invalid = || OutboxRowError::Columns {
            id: self.id,
            columns: self.columns.clone(),
        };
        let Value::Array(entries) = value::to_json(type_oid::TEXT_ARRAY, &self.columns) else {
            return Err(invalid());
        };
        entries
            .into_iter()
            .map(|entry| {
                let entry = entry.as_str().ok_or_else(invalid)?;
                let (type_oid, name) = entry.split_once(':').ok_or_else(invalid)?;
                Ok(Column {
                    type_oid: type_oid.parse().map_err(|_| invalid())?,
                    name: name.to_string(),
                })
            })
            .collect()
    }

    /// The type OIDs of the row's columns, in order.
    pub(crate) fn column_types(&self) -> Result<impl Iterator<Item = u32>, OutboxRowError> {
        Ok(self
            .parse_columns()?
            .into_iter()
            .map(|column| column.type_oid))
    }

    fn row(
        &self,
        types: &TypeCatalog,
        columns: &[Column],
        which: &'static str,
        text: &str,
    ) -> Result<Row, OutboxRowError> {
        let mut values = parse_record(text).map_err(|source| OutboxRowError::Record {
            id: self.id,
            which,
            source,
        })?;
        // No columns print as "()", which reads as one NULL field.
        if columns.is_empty() && values == [None] {
            values.clear();
        }
        if values.len() != columns.len() {
            return Err(OutboxRowError::Shape {
                id: self.id,
                which,
                values: values.len(),
                columns: columns.len(),
            });
        }
        Ok(columns
            .iter()
            .zip(values)
            .map(|(column, text)| {
                let value = match text {
                    None => Value::Null,
                    Some(text) => types.to_json(column.type_oid, &text),
                };
                (column.name.clone(), value)
            })
            .collect())
    }
}

#[cfg(test)]
#[path = "outbox_fuzz.rs"]
mod fuzz;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn outbox_row(action: &str, item: &str, old_item: Option<&str>) -> OutboxRow {
        OutboxRow {
            id: 0x1_0000_0007,
            transaction_id: 804,
            wal_position: Lsn(0x16113C58),
            changed_at_micros: 1_795_341_600_123_456,
            table: TableName::new("public", "orders"),
            action: action.to_string(),
            item: item.to_string(),
            old_item: old_item.map(str::to_string),
            columns: r#"{20:id,25:status,1700:total,1184:paid_at,1009:tags,"3802:line items"}"#
                .to_string(),
            size: 0,
        }
    }

    const ROW: &str =
        r#"(42,paid,99.90,"2026-11-22 17:21:21.490266+00","{""x y"",z}","{""sku"": ""A1""}")"#;
    const OLD_ROW: &str = r#"(42,new,99.90,,"{""x y"",z}","{""sku"": ""A1""}")"#;

    #[test]
    fn a_create_has_typed_values_in_column_order() {
        let change = outbox_row("create", ROW, None)
            .to_change(&TypeCatalog::default())
            .unwrap();
        assert_eq!(change.action, Action::Create);
        assert_eq!(
            serde_json::to_string(&change.item).unwrap(),
            r#"{"id":42,"status":"paid","total":"99.90","paid_at":"2026-11-22T17:21:21.490266Z","tags":["x y","z"],"line items":{"sku":"A1"}}"#
        );
        assert_eq!(change.old, None);
        assert_eq!(change.changed, None);
        assert_eq!(change.lsn, Lsn(0x16113C58));
        assert_eq!(change.commit_time_micros, 1_795_341_600_123_456);
    }

    #[test]
    fn an_update_knows_its_old_row_and_what_changed() {
        let change = outbox_row("update", ROW, Some(OLD_ROW))
            .to_change(&TypeCatalog::default())
            .unwrap();
        let old = change.old.unwrap();
        assert_eq!(old["status"], json!("new"));
        assert_eq!(old["paid_at"], Value::Null);
        assert_eq!(
            change.changed,
            Some(vec!["status".to_string(), "paid_at".to_string()])
        );
    }

    #[test]
    fn a_delete_carries_the_old_row_as_item_and_old() {
        let change = outbox_row("delete", OLD_ROW, None)
            .to_change(&TypeCatalog::default())
            .unwrap();
        assert_eq!(change.action, Action::Delete);
        assert_eq!(change.old.as_ref(), Some(&change.item));
        assert_eq!(change.changed, None);
    }

    #[test]
    fn the_position_is_the_transaction_and_the_low_half_of_the_id() {
        let change = outbox_row("create", ROW, None)
            .to_change(&TypeCatalog::default())
            .unwrap();
        assert_eq!(
            change.position,
            Position {
                transaction: 804,
                sequence: 7
            }
        );
    }

    #[test]
    fn tables_without_columns() {
        let mut row = outbox_row("create", "()", None);
        row.columns = "{}".to_string();
        assert!(
            row.to_change(&TypeCatalog::default())
                .unwrap()
                .item
                .is_empty()
        );
    }

    #[test]
    fn bad_rows_are_named_errors() {
        let error = outbox_row("upsert", ROW, None)
            .to_change(&TypeCatalog::default())
            .unwrap_err();
        assert!(error.to_string().contains("unknown action \"upsert\""));
        let error = outbox_row("create", "(1,2)", None)
            .to_change(&TypeCatalog::default())
            .unwrap_err();
        assert_eq!(
            error.to_string(),
            "outbox row 4294967303: row has 2 values for 6 columns"
        );
        let error = outbox_row("update", ROW, None)
            .to_change(&TypeCatalog::default())
            .unwrap_err();
        assert!(matches!(error, OutboxRowError::MissingOld { .. }));
        let mut row = outbox_row("create", ROW, None);
        row.columns = "{id}".to_string();
        assert!(matches!(
            row.to_change(&TypeCatalog::default()),
            Err(OutboxRowError::Columns { .. })
        ));
        let row = outbox_row("create", "(1", None);
        assert!(matches!(
            row.to_change(&TypeCatalog::default()),
            Err(OutboxRowError::Record { .. })
        ));
    }
}
