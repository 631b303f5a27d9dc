//! Turns the pgoutput message stream into [`Change`]s: keeps the relation descriptions
//! and the current transaction, and types every column value as JSON.
//!
//! Row semantics (the contract's §3 and §4):
//!
//! - Every row (`item`, `old`) holds every published column of the table, in column
//!   order; NULL is JSON null.
//! - **Insert**: `item` is the new row; `old` and `changed` are `None`.
//! - **Update without old tuple** (default replica identity, key unchanged): `item` is the
//!   new row; `old` and `changed` are `None`.
//! - **Update with `'O'`** (REPLICA IDENTITY FULL): `old` is the full old row. A column
//!   the new tuple marks as unchanged TOAST is taken from the old row. `changed` lists
//!   the columns whose JSON value differs between `old` and `item`, in column order.
//! - **Update with `'K'`** (the key changed under DEFAULT or INDEX identity): `old` has
//!   every column, the key columns with their old values and the others null (PostgreSQL
//!   sends them as null); `changed` is `None`, as the old row is not fully known.
//! - **Delete**: the old tuple (`'K'` or `'O'`), with every column (those not carried are
//!   null), is both `item` and `old`; `changed` is `None`.
//! - An unchanged TOASTed value whose old value is not known is
//!   `{"unchanged_toast": true}`.
//! - Every change is stamped with `lsn` = the XLogData frame's start LSN, `position` =
//!   (the transaction's commit LSN, from its Begin; the index of the change within the
//!   transaction, from 0) and the commit time in Unix microseconds. Both are stable when
//!   the server sends the transaction again after a reconnect. Truncates take no index.
//! - A binary column value (sent only if binary mode were requested, which rowhook does
//!   not do) is kept as its bytes in `\x…` hex text, since no type's binary format is
//!   interpreted here.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use serde_json::Value;

use crate::capture::replication::pgoutput::{
    self, ColumnValue, Message, OldTuple, OldTupleKind, Tuple,
};
use crate::capture::value::TypeCatalog;
use crate::change::{Action, Change, Lsn, OversizedRow, Position, Row, TableName};

/// What one pgoutput message meant.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Decoded {
    /// A transaction starts; its changes follow.
    Begin {
        commit_lsn: Lsn,
        commit_time_micros: i64,
    },
    Change(Change),
    /// A row change too large to read (`source.max_row`).
    Oversized(OversizedRow),
    /// The transaction is complete; `end_lsn` is the position to confirm once stored.
    Commit {
        commit_lsn: Lsn,
        end_lsn: Lsn,
    },
    /// A relation was described (again); before its rows decode, the catalog must know
    /// these user-defined column types, read afresh as they may have changed.
    Described {
        user_types: BTreeSet<u32>,
    },
    /// `TRUNCATE` of these tables (no per-row changes are sent for it).
    Truncate {
        tables: Vec<TableName>,
    },
    /// Relation, Type, Origin and logical Message: nothing to deliver.
    Other,
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error(transparent)]
    Message(#[from] pgoutput::DecodeError),
    #[error(
        "{message} message for relation OID {relation_oid}, which no Relation message described"
    )]
    UnknownRelation {
        message: &'static str,
        relation_oid: u32,
    },
    #[error("{message} message outside a transaction (no Begin before it)")]
    OutsideTransaction { message: &'static str },
    #[error(
        "Begin of the transaction committing at {new} while the one committing at {open} is still open"
    )]
    BeginInsideTransaction { open: Lsn, new: Lsn },
    #[error("Commit at {commit} does not match the Begin's commit LSN {begin}")]
    CommitMismatch { begin: Lsn, commit: Lsn },
    #[error(
        "{message} on {table}: the {tuple} tuple has {found} columns, the relation has {expected}"
    )]
    ColumnCountMismatch {
        message: &'static str,
        table: TableName,
        tuple: &'static str,
        expected: usize,
        found: usize,
    },
    #[error(
        "more than {} changes in the transaction committing at {commit_lsn}",
        u32::MAX
    )]
    TooManyChanges { commit_lsn: Lsn },
    #[error("an {message} message too large to read is too short to name its relation")]
    OversizedWithoutRelation { message: &'static str },
}

/// Decodes a replication stream message by message; one per connection.
#[derive(Debug, Default)]
pub(crate) struct ChangeDecoder {
    relations: HashMap<u32, CachedRelation>,
    transaction: Option<Transaction>,
    /// User-defined column types, filled by the stream on [`Decoded::Described`].
    types: TypeCatalog,
}

/// A relation as last described, prepared once for building rows.
#[derive(Debug)]
struct CachedRelation {
    table: TableName,
    columns: Vec<CachedColumn>,
}

#[derive(Debug)]
struct CachedColumn {
    name: String,
    type_oid: u32,
    is_key: bool,
}

#[derive(Clone, Copy, Debug)]
struct Transaction {
    commit_lsn: Lsn,
    commit_time_micros: i64,
    next_sequence: u32,
}

impl ChangeDecoder {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Forgets a transaction left open when the connection broke: the server sends it
    /// again, from its Begin, after a reconnect. Relation descriptions are kept (they are
    /// sent again anyway before their next use).
    pub(crate) fn types_mut(&mut self) -> &mut TypeCatalog {
        &mut self.types
    }

    pub(crate) fn abandon_transaction(&mut self) {
        self.transaction = None;
    }

    /// Decodes one XLogData payload; `wal_start` is the frame's start LSN, which becomes
    /// the change's `lsn`. Copies the message once; see [`Self::decode_bytes`].
    #[cfg(test)]
    pub(crate) fn decode(
        &mut self,
        wal_start: Lsn,
        message: &[u8],
    ) -> Result<Decoded, DecodeError> {
        self.apply(wal_start, pgoutput::decode(message)?)
    }

    /// A message that was too large to read: only its `head` (its first bytes) is known.
    /// A row change takes its place in the transaction like any other (so the ids of
    /// the changes after it stay what they would have been) and comes out without its
    /// row; anything else that large is no row and is left out.
    pub(crate) fn decode_oversized(
        &mut self,
        wal_start: Lsn,
        head: &[u8],
        bytes: u64,
        limit: u64,
    ) -> Result<Decoded, DecodeError> {
        let (action, message) = match head.first() {
            Some(b'I') => (Action::Create, "Insert"),
            Some(b'U') => (Action::Update, "Update"),
            Some(b'D') => (Action::Delete, "Delete"),
            _ => return Ok(Decoded::Other),
        };
        let Some(oid) = head.get(1..5) else {
            return Err(DecodeError::OversizedWithoutRelation { message });
        };
        let relation_oid = u32::from_be_bytes([oid[0], oid[1], oid[2], oid[3]]);
        let stamp = stamp(&mut self.transaction, message, wal_start)?;
        let relation = lookup(&self.relations, message, relation_oid)?;
        let Decoded::Change(change) = relation.change(action, Row::new(), None, None, stamp) else {
            unreachable!("a relation's change is a change");
        };
        Ok(Decoded::Oversized(OversizedRow {
            change,
            bytes,
            limit,
        }))
    }

    /// [`Self::decode`] without copying the message.
    pub(crate) fn decode_bytes(
        &mut self,
        wal_start: Lsn,
        message: bytes::Bytes,
    ) -> Result<Decoded, DecodeError> {
        self.apply(wal_start, pgoutput::decode_bytes(message)?)
    }

    fn apply(&mut self, wal_start: Lsn, message: Message) -> Result<Decoded, DecodeError> {
        match message {
            Message::Begin(begin) => {
                if let Some(open) = self.transaction {
                    return Err(DecodeError::BeginInsideTransaction {
                        open: open.commit_lsn,
                        new: begin.final_lsn,
                    });
                }
                let commit_time_micros = begin
                    .commit_timestamp
                    .saturating_add(pgoutput::POSTGRES_EPOCH_UNIX_MICROS);
                self.transaction = Some(Transaction {
                    commit_lsn: begin.final_lsn,
                    commit_time_micros,
                    next_sequence: 0,
                });
                Ok(Decoded::Begin {
                    commit_lsn: begin.final_lsn,
                    commit_time_micros,
                })
            }
            Message::Commit(commit) => {
                let open = self
                    .transaction
                    .take()
                    .ok_or(DecodeError::OutsideTransaction { message: "Commit" })?;
                if open.commit_lsn != commit.commit_lsn {
                    return Err(DecodeError::CommitMismatch {
                        begin: open.commit_lsn,
                        commit: commit.commit_lsn,
                    });
                }
                Ok(Decoded::Commit {
                    commit_lsn: commit.commit_lsn,
                    end_lsn: commit.end_lsn,
                })
            }
            Message::Relation(relation) => {
                let columns = relation
                    .columns
                    .into_iter()
                    .map(|column| CachedColumn {
                        is_key: column.is_key(),
                        name: column.name,
                        type_oid: column.type_oid,
                    })
                    .collect();
                let table = TableName::new(relation.namespace, relation.name);
                let relation_types = CachedRelation { table, columns };
                let user_types = relation_types
                    .columns
                    .iter()
                    .map(|column| column.type_oid)
                    .filter(|oid| TypeCatalog::is_user_defined(*oid))
                    .collect();
                // A later description of the same OID (after ALTER TABLE) replaces the old one.
                self.relations.insert(relation.oid, relation_types);
                Ok(Decoded::Described { user_types })
            }
            Message::Insert { relation_oid, new } => {
                let stamp = stamp(&mut self.transaction, "Insert", wal_start)?;
                let relation = lookup(&self.relations, "Insert", relation_oid)?;
                relation.check_count("Insert", "new", &new)?;
                Ok(relation.change(
                    Action::Create,
                    relation.row(&self.types, &new),
                    None,
                    None,
                    stamp,
                ))
            }
            Message::Update {
                relation_oid,
                old,
                new,
            } => {
                let stamp = stamp(&mut self.transaction, "Update", wal_start)?;
                let relation = lookup(&self.relations, "Update", relation_oid)?;
                relation.check_count("Update", "new", &new)?;
                let (item, old, changed) = match old {
                    None => (relation.row(&self.types, &new), None, None),
                    Some(old) => {
                        relation.check_count("Update", old_tuple_name(&old), &old.tuple)?;
                        relation.update_with_old(&self.types, &old, &new)
                    }
                };
                Ok(relation.change(Action::Update, item, old, changed, stamp))
            }
            Message::Delete { relation_oid, old } => {
                let stamp = stamp(&mut self.transaction, "Delete", wal_start)?;
                let relation = lookup(&self.relations, "Delete", relation_oid)?;
                relation.check_count("Delete", old_tuple_name(&old), &old.tuple)?;
                let row = relation.row(&self.types, &old.tuple);
                Ok(relation.change(Action::Delete, row.clone(), Some(row), None, stamp))
            }
            Message::Truncate { relation_oids, .. } => {
                if self.transaction.is_none() {
                    return Err(DecodeError::OutsideTransaction {
                        message: "Truncate",
                    });
                }
                let tables = relation_oids
                    .into_iter()
                    .map(|oid| Ok(lookup(&self.relations, "Truncate", oid)?.table.clone()))
                    .collect::<Result<_, DecodeError>>()?;
                Ok(Decoded::Truncate { tables })
            }
            Message::Origin { .. } | Message::Type { .. } | Message::Logical { .. } => {
                Ok(Decoded::Other)
            }
        }
    }
}

fn lookup<'a>(
    relations: &'a HashMap<u32, CachedRelation>,
    message: &'static str,
    relation_oid: u32,
) -> Result<&'a CachedRelation, DecodeError> {
    relations
        .get(&relation_oid)
        .ok_or(DecodeError::UnknownRelation {
            message,
            relation_oid,
        })
}

/// What every change of one message carries about where it stands.
struct Stamp {
    lsn: Lsn,
    position: Position,
    commit_time_micros: i64,
}

/// Takes the next sequence number of the open transaction.
fn stamp(
    transaction: &mut Option<Transaction>,
    message: &'static str,
    wal_start: Lsn,
) -> Result<Stamp, DecodeError> {
    let transaction = transaction
        .as_mut()
        .ok_or(DecodeError::OutsideTransaction { message })?;
    let sequence = transaction.next_sequence;
    transaction.next_sequence = sequence.checked_add(1).ok_or(DecodeError::TooManyChanges {
        commit_lsn: transaction.commit_lsn,
    })?;
    let position = Position {
        transaction: transaction.commit_lsn.0,
        sequence,
    };
    Ok(Stamp {
        lsn: wal_start,
        position,
        commit_time_micros: transaction.commit_time_micros,
    })
}

fn old_tuple_name(old: &OldTuple) -> &'static str {
    match old.kind {
        OldTupleKind::Key => "old key",
        OldTupleKind::Full => "old",
    }
}

fn unchanged_toast() -> Value {
    let mut marker = serde_json::Map::with_capacity(1);
    marker.insert("unchanged_toast".to_owned(), Value::Bool(true));
    Value::Object(marker)
}

impl CachedRelation {
    fn check_count(
        &self,
        message: &'static str,
        tuple: &'static str,
        values: &Tuple,
    ) -> Result<(), DecodeError> {
        if values.0.len() == self.columns.len() {
            return Ok(());
        }
        Err(DecodeError::ColumnCountMismatch {
            message,
            table: self.table.clone(),
            tuple,
            expected: self.columns.len(),
            found: values.0.len(),
        })
    }

    /// A column's value as JSON; `None` for an unchanged TOASTed value.
    fn value(types: &TypeCatalog, column: &CachedColumn, value: &ColumnValue) -> Option<Value> {
        Some(match value {
            ColumnValue::Null => Value::Null,
            ColumnValue::UnchangedToast => return None,
            ColumnValue::Text(text) => types.bytes_to_json(column.type_oid, text),
            ColumnValue::Binary(bytes) => {
                let mut hex = String::with_capacity(2 + 2 * bytes.len());
                hex.push_str("\\x");
                for byte in bytes.iter() {
                    // Writing to a String cannot fail.
                    let _ = write!(hex, "{byte:02x}");
                }
                Value::String(hex)
            }
        })
    }

    /// A row from one tuple (whose count was checked), unchanged TOAST as the marker.
    fn row(&self, types: &TypeCatalog, tuple: &Tuple) -> Row {
        let mut row = Row::with_capacity(self.columns.len());
        for (column, value) in self.columns.iter().zip(&tuple.0) {
            let value = Self::value(types, column, value).unwrap_or_else(unchanged_toast);
            row.insert(column.name.clone(), value);
        }
        row
    }

    fn change(
        &self,
        action: Action,
        item: Row,
        old: Option<Row>,
        changed: Option<Vec<String>>,
        stamp: Stamp,
    ) -> Decoded {
        Decoded::Change(Change {
            action,
            table: self.table.clone(),
            item,
            old,
            changed,
            lsn: stamp.lsn,
            position: stamp.position,
            commit_time_micros: stamp.commit_time_micros,
        })
    }

    /// An update's (item, old, changed) when an old tuple came with it (counts checked).
    fn update_with_old(
        &self,
        types: &TypeCatalog,
        old: &OldTuple,
        new: &Tuple,
    ) -> (Row, Option<Row>, Option<Vec<String>>) {
        let full = old.kind == OldTupleKind::Full;
        let old_values: Vec<Value> = self
            .columns
            .iter()
            .zip(&old.tuple.0)
            .map(|(column, value)| {
                Self::value(types, column, value).unwrap_or_else(unchanged_toast)
            })
            .collect();
        let mut item = Row::with_capacity(self.columns.len());
        let mut changed = full.then(Vec::new);
        for ((column, new_value), old_value) in self.columns.iter().zip(&new.0).zip(&old_values) {
            let value = match Self::value(types, column, new_value) {
                Some(value) => value,
                // An unchanged value equals its old one, known under FULL and, for key
                // columns, from the 'K' tuple; the other columns of a 'K' tuple are null
                // placeholders, not values.
                None if full || column.is_key => old_value.clone(),
                None => unchanged_toast(),
            };
            if let Some(changed) = changed.as_mut()
                && *old_value != value
            {
                changed.push(column.name.clone());
            }
            item.insert(column.name.clone(), value);
        }
        let old_row = self
            .columns
            .iter()
            .map(|column| column.name.clone())
            .zip(old_values)
            .collect();
        (item, Some(old_row), changed)
    }
}

#[cfg(test)]
#[path = "decoder_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "decoder_fuzz.rs"]
mod fuzz;
