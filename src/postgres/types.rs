//! The shapes of the types PostgreSQL users define, read from `pg_type`: what a value's
//! text form holds, so that it converts as its base type, its fields or its elements.

use std::collections::BTreeSet;

use tokio_postgres::Client;

/// Objects with OIDs below this are built into PostgreSQL (`FirstNormalObjectId`); the
/// built-in types convert by fixed rules and are never asked about.
pub(crate) const FIRST_USER_OID: u32 = 16_384;

/// How a user-defined type's values are written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum TypeShape {
    /// A domain: its values are its base type's (which may be a domain again).
    Domain { base: u32 },
    /// A composite type (or a table's row type): a record of its fields, in order.
    Composite { fields: Vec<(String, u32)> },
    /// An array of `element`.
    Array { element: u32 },
    /// Anything else (enums, ranges, extension types): its text.
    Text,
}

/// The shapes of `oids` that are user-defined, and of every user-defined type they are
/// built from (a domain's base, a composite's fields, an array's element), in one query.
pub(crate) async fn type_shapes(
    client: &Client,
    oids: &BTreeSet<u32>,
) -> Result<Vec<(u32, TypeShape)>, tokio_postgres::Error> {
    let wanted: Vec<u32> = oids
        .iter()
        .copied()
        .filter(|oid| *oid >= FIRST_USER_OID)
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    // Arrays are told by their element and variable length: fixed-length types with an
    // element (`point`) are not written as `{…}`.
    let rows = client
        .query(
            "WITH RECURSIVE wanted(oid) AS (
                 SELECT unnest($1::oid[])
                 UNION
                 SELECT used.oid
                 FROM wanted JOIN pg_catalog.pg_type t ON t.oid = wanted.oid
                 CROSS JOIN LATERAL (
                     SELECT t.typbasetype WHERE t.typtype = 'd'
                     UNION ALL
                     SELECT t.typelem WHERE t.typtype = 'b' AND t.typelem <> 0 AND t.typlen = -1
                     UNION ALL
                     SELECT a.atttypid FROM pg_catalog.pg_attribute a
                     WHERE t.typtype = 'c' AND a.attrelid = t.typrelid
                       AND a.attnum > 0 AND NOT a.attisdropped
                 ) AS used(oid)
                 WHERE used.oid >= $2::oid
             )
             SELECT t.oid, t.typtype::text AS kind, t.typbasetype AS base,
                    CASE WHEN t.typtype = 'b' AND t.typlen = -1 THEN t.typelem ELSE 0 END AS element,
                    coalesce(array_agg(a.attname::text ORDER BY a.attnum)
                             FILTER (WHERE a.attname IS NOT NULL), '{}') AS field_names,
                    coalesce(array_agg(a.atttypid ORDER BY a.attnum)
                             FILTER (WHERE a.attname IS NOT NULL), '{}') AS field_types
             FROM pg_catalog.pg_type t
             LEFT JOIN pg_catalog.pg_attribute a
                 ON t.typtype = 'c' AND a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped
             WHERE t.oid IN (SELECT oid FROM wanted)
             GROUP BY t.oid",
            &[&wanted, &FIRST_USER_OID],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| {
            let oid: u32 = row.get("oid");
            let kind: String = row.get("kind");
            let element: u32 = row.get("element");
            let shape = match kind.as_str() {
                "d" => TypeShape::Domain {
                    base: row.get("base"),
                },
                "c" => {
                    let names: Vec<String> = row.get("field_names");
                    let types: Vec<u32> = row.get("field_types");
                    TypeShape::Composite {
                        fields: names.into_iter().zip(types).collect(),
                    }
                }
                "b" if element != 0 => TypeShape::Array { element },
                _ => TypeShape::Text,
            };
            (oid, shape)
        })
        .collect())
}
