//! Fuzz target `notify_record`: outbox rows as the trigger writes them (the corpus was
//! read from `rowhook.outbox` on PostgreSQL 15), turned into changes. An input is the
//! row's action, column list, record text and, for updates, the old record, separated
//! by the ASCII record separator (0x1E), since record texts hold line breaks.

use super::OutboxRow;
use crate::capture::value::TypeCatalog;
use crate::change::{Action, Lsn, TableName};
use crate::fuzz::{Target, fuzz, valid_corpus};
use crate::postgres::TypeShape;

const SEPARATOR: char = '\u{1e}';
/// The OIDs PostgreSQL gave the captured table's enum `mood` and composite `address`.
const MOOD: u32 = 16_411;
const ADDRESS: u32 = 16_417;

fn outbox_row(text: &str) -> OutboxRow {
    let mut fields = text.splitn(4, SEPARATOR);
    let mut field = || fields.next().map(str::to_string);
    OutboxRow {
        id: 0x1_0000_0007,
        transaction_id: 804,
        wal_position: Lsn(0x1611_3C58),
        changed_at_micros: 1_795_341_600_123_456,
        table: TableName::new("public", "orders"),
        action: field().unwrap_or_default(),
        columns: field().unwrap_or_default(),
        item: field().unwrap_or_default(),
        old_item: field(),
        size: 0,
    }
}

fn types() -> TypeCatalog {
    let mut types = TypeCatalog::default();
    types.learn([
        (MOOD, TypeShape::Text),
        (
            ADDRESS,
            TypeShape::Composite {
                fields: vec![("street".to_string(), 25), ("zip".to_string(), 23)],
            },
        ),
    ]);
    types
}

fn convert(types: &TypeCatalog, input: &[u8]) -> Result<(), String> {
    let row = outbox_row(&String::from_utf8_lossy(input));
    let change = match row.to_change(types) {
        Ok(change) => change,
        Err(error) => {
            let _ = error.to_string();
            return Ok(());
        }
    };
    // What changed is a subset of the row's columns, and only an update says.
    match (&change.changed, change.action) {
        (Some(changed), Action::Update) => {
            match changed.iter().find(|name| !change.item.contains_key(*name)) {
                Some(name) => Err(format!(
                    "{name:?} changed but is not a column of {:?}",
                    change.item
                )),
                None => Ok(()),
            }
        }
        (None, Action::Update) => Err("an update without its changed columns".to_string()),
        (Some(_), action) => Err(format!("a {action:?} with changed columns")),
        (None, _) => Ok(()),
    }
}

#[test]
fn notify_record() {
    let types = types();
    fuzz(Target {
        name: "notify_record",
        dictionary: &[
            b"\x1e",
            b"create",
            b"update",
            b"delete",
            b"read",
            b"(",
            b")",
            b"\"",
            b"\"\"",
            b"\\",
            b",",
            b"{",
            b"}",
            b"NULL",
            b":",
            b"23:",
            b"25:",
            b"1009:",
            b"3802:",
            b"16411:",
            b"16417:",
            b"4294967296:",
            b"{{1,2},{3,4}}",
            b"[1:2]={1,2}",
            b"(\"(\"\"a\"\",1)\",)",
        ],
        max_length: 16_384,
        extra_corpus: &[],
        execute: &|input| convert(&types, input),
    });
}

#[test]
fn the_corpus_rows_convert() {
    let types = types();
    for (path, input) in valid_corpus("notify_record") {
        let text = String::from_utf8(input).expect("a text file");
        if let Err(error) = outbox_row(&text).to_change(&types) {
            panic!("{}: {error}", path.display());
        }
    }
}
