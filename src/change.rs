//! What flows from a source to the router: one committed row change, its row typed as JSON.

use std::fmt;
use std::str::FromStr;

/// A row: column name to JSON value, in the table's column order.
pub type Row = serde_json::Map<String, serde_json::Value>;

/// A position in the write-ahead log.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    /// PostgreSQL's own notation: two hexadecimal halves, `0/16B3748`.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid LSN {0:?}: expected two hexadecimal halves such as 0/16B3748")]
pub struct InvalidLsn(String);

impl FromStr for Lsn {
    type Err = InvalidLsn;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidLsn(text.to_string());
        let (high, low) = text.split_once('/').ok_or_else(invalid)?;
        let high = u32::from_str_radix(high, 16).map_err(|_| invalid())?;
        let low = u32::from_str_radix(low, 16).map_err(|_| invalid())?;
        Ok(Lsn((u64::from(high) << 32) | u64::from(low)))
    }
}

/// What happened to the row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    Create,
    Update,
    Delete,
    /// A row sent as it is by a backfill (CONTRACT §8); never captured, never in `on`.
    Read,
}

impl Action {
    /// The actions a webhook's `on` may name: the changes capture sees.
    pub const ALL: [Action; 3] = [Action::Create, Action::Update, Action::Delete];

    /// The word used in configuration and in the envelope's `action`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Read => "read",
        }
    }

    /// The suffix of the envelope's `type`: `order.created`.
    pub fn past_tense(self) -> &'static str {
        match self {
            Action::Create => "created",
            Action::Update => "updated",
            Action::Delete => "deleted",
            Action::Read => "read",
        }
    }
}

impl FromStr for Action {
    type Err = ();

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Action::ALL
            .into_iter()
            .find(|action| action.as_str() == text)
            .ok_or(())
    }
}

/// A schema-qualified table name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TableName {
    pub schema: String,
    pub name: String,
}

impl TableName {
    pub fn new(schema: impl Into<String>, name: impl Into<String>) -> Self {
        TableName {
            schema: schema.into(),
            name: name.into(),
        }
    }

    /// The name quoted for use in SQL: `"public"."orders"`.
    pub fn quoted(&self) -> String {
        format!(
            "{}.{}",
            quote_identifier(&self.schema),
            quote_identifier(&self.name)
        )
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}.{}", self.schema, self.name)
    }
}

/// Quotes an SQL identifier, doubling embedded quotes.
pub fn quote_identifier(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// Where a change stands in the source, stable across replays: the same change read
/// again after a crash or reconnect has the same position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// The commit LSN of the change's transaction (replication), the transaction id
    /// (notify); for a backfill's read, the row's ordinal in its job.
    pub transaction: u64,
    /// The change's index within its transaction, from 0; for a backfill's read, the job.
    pub sequence: u32,
}

/// One committed row change on a captured table.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub action: Action,
    pub table: TableName,
    /// The row after the change; for a delete, the row before it as far as known.
    /// Every column of the table is present (NULL as JSON null).
    pub item: Row,
    /// The row before the change, when the source knows it.
    pub old: Option<Row>,
    /// Columns whose value changed, when the old row is fully known (updates only).
    pub changed: Option<Vec<String>>,
    /// The WAL position of this change's record (notify mode: the outbox row id).
    pub lsn: Lsn,
    pub position: Position,
    /// Commit time, microseconds since the Unix epoch.
    pub commit_time_micros: i64,
}

/// A change whose row was too large to read (`source.max_row`, CONTRACT §12): where it
/// stands and what happened to which table are known, the row is not (`change.item` is
/// empty). Its webhooks' events are created failed, with the reason.
#[derive(Clone, Debug, PartialEq)]
pub struct OversizedRow {
    pub change: Change,
    /// The size of the row as it came (replication: the whole message).
    pub bytes: u64,
    pub limit: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lsn_round_trips_through_text() {
        let lsn: Lsn = "0/16B3748".parse().unwrap();
        assert_eq!(lsn, Lsn(0x16B3748));
        assert_eq!(lsn.to_string(), "0/16B3748");
        let high: Lsn = "A/1".parse().unwrap();
        assert_eq!(high, Lsn((0xA << 32) | 1));
        assert_eq!(high.to_string(), "A/1");
        assert!("16B3748".parse::<Lsn>().is_err());
        assert!("0/xyz".parse::<Lsn>().is_err());
    }

    #[test]
    fn action_words() {
        assert_eq!("update".parse::<Action>(), Ok(Action::Update));
        assert!("upsert".parse::<Action>().is_err());
        assert_eq!(Action::Delete.past_tense(), "deleted");
    }

    #[test]
    fn table_names_are_quoted_for_sql() {
        let table = TableName::new("public", "we\"ird");
        assert_eq!(table.quoted(), "\"public\".\"we\"\"ird\"");
        assert_eq!(table.to_string(), "public.we\"ird");
    }
}
