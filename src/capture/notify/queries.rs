//! The SQL the notify source sends, and reading its answers.

use tokio_postgres::Row;

use super::error::NotifyError;
use super::outbox::OutboxRow;
use crate::change::TableName;

/// Rows in id order from after `$1`, at most `$2` of them and about `$3` bytes (at least
/// one row). A row over `$4` bytes (`source.max_row`) comes without its values, which
/// stay on the server. `octet_length` of a text value reads its size from the TOAST
/// header, without decompressing it.
pub(super) const FETCH: &str = "SELECT id, transaction_id::text, wal_position::text,
        (extract(epoch FROM changed_at) * 1000000)::int8,
        table_schema, table_name, action,
        CASE WHEN size > $4 THEN '' ELSE item END,
        CASE WHEN size > $4 THEN NULL ELSE old_item END,
        columns, size
    FROM (
        SELECT batch.*,
            (sum(least(size, $4::int8)) OVER (ORDER BY id))::int8 - least(size, $4::int8) AS before
        FROM (
            SELECT outbox.*,
                octet_length(item)::int8 + coalesce(octet_length(old_item), 0) AS size
            FROM rowhook.outbox WHERE id > $1 ORDER BY id LIMIT $2
        ) batch
    ) sized
    WHERE before < $3 ORDER BY id";
pub(super) const DELETE: &str = "DELETE FROM rowhook.outbox WHERE id = ANY($1)";
pub(super) const REJECT: &str =
    "WITH moved AS (DELETE FROM rowhook.outbox WHERE id = $1 RETURNING *)
    INSERT INTO rowhook.rejected SELECT moved.*, now(), $2 FROM moved";

pub(super) fn read_row(row: &Row) -> Result<OutboxRow, NotifyError> {
    let id: i64 = row.get(0);
    let unreadable = |column: &'static str, value: &str| NotifyError::Unreadable {
        id,
        column,
        value: value.to_string(),
    };
    let transaction_id: String = row.get(1);
    let wal_position: String = row.get(2);
    Ok(OutboxRow {
        id,
        transaction_id: transaction_id
            .parse()
            .map_err(|_| unreadable("transaction_id", &transaction_id))?,
        wal_position: wal_position
            .parse()
            .map_err(|_| unreadable("wal_position", &wal_position))?,
        changed_at_micros: row.get(3),
        table: TableName::new(row.get::<_, String>(4), row.get::<_, String>(5)),
        action: row.get(6),
        item: row.get(7),
        old_item: row.get(8),
        columns: row.get(9),
        size: row.get(10),
    })
}
