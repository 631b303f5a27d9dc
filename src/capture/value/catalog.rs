//! The user-defined types met so far, by OID, and the conversion that follows them: a
//! domain as its base type, a composite as an object of its fields, an array of either
//! element by element — the way `to_jsonb` writes them.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};
use tokio_postgres::Client;

use super::array::array_to_json;
use super::record::parse_record;
use super::{array_element_type, scalar_to_json};
use crate::postgres::{FIRST_USER_OID, TypeShape, type_shapes};

/// Domains over arrays of composites of domains nest; PostgreSQL forbids cycles, and this
/// bound keeps a malformed catalog answer from recursing without end.
const MAX_DEPTH: usize = 32;

/// Type shapes by OID. Empty, it converts built-in types only; everything it does not
/// know keeps its text.
#[derive(Clone, Debug, Default)]
pub struct TypeCatalog {
    shapes: HashMap<u32, TypeShape>,
}

impl TypeCatalog {
    /// Whether values of `oid` need a catalog entry to convert as `to_jsonb` would.
    pub(crate) fn is_user_defined(oid: u32) -> bool {
        oid >= FIRST_USER_OID
    }

    /// Reads the shapes of the user-defined `oids` (and what they are built from) from
    /// the catalog, replacing what was known of them: called when a relation is
    /// described again, which is when a type may have changed.
    pub(crate) async fn load(
        &mut self,
        client: &Client,
        oids: impl IntoIterator<Item = u32>,
    ) -> Result<(), tokio_postgres::Error> {
        let wanted: BTreeSet<u32> = oids
            .into_iter()
            .filter(|oid| Self::is_user_defined(*oid))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        let shapes = type_shapes(client, &wanted).await?;
        self.learn(shapes);
        Ok(())
    }

    pub(crate) fn learn(&mut self, shapes: impl IntoIterator<Item = (u32, TypeShape)>) {
        self.shapes.extend(shapes);
    }

    /// A value's text form to JSON, as CONTRACT §4 says.
    pub fn to_json(&self, type_oid: u32, text: &str) -> Value {
        self.convert(type_oid, Cow::Borrowed(text), 0)
    }

    /// [`Self::to_json`] for the raw bytes of a tuple column. Text should be UTF-8 (the
    /// walsender converts to the session's `client_encoding`); invalid sequences become
    /// U+FFFD rather than failing the whole change.
    pub(crate) fn bytes_to_json(&self, type_oid: u32, bytes: &[u8]) -> Value {
        match std::str::from_utf8(bytes) {
            Ok(text) => self.to_json(type_oid, text),
            Err(_) => self.to_json(type_oid, &String::from_utf8_lossy(bytes)),
        }
    }

    pub(super) fn convert(&self, type_oid: u32, text: Cow<'_, str>, depth: usize) -> Value {
        if depth > MAX_DEPTH {
            return Value::String(text.into_owned());
        }
        let converted = match self.shapes.get(&type_oid) {
            Some(TypeShape::Domain { base }) => return self.convert(*base, text, depth + 1),
            Some(TypeShape::Array { element }) => array_to_json(self, *element, &text, depth + 1),
            Some(TypeShape::Composite { fields }) => self.composite(fields, &text, depth + 1),
            Some(TypeShape::Text) => None,
            None => match array_element_type(type_oid) {
                Some(element) => array_to_json(self, element, &text, depth + 1),
                None => return scalar_to_json(type_oid, text),
            },
        };
        converted.unwrap_or_else(|| Value::String(text.into_owned()))
    }

    /// A record's text, `(7,"seven")`, to an object of its fields. `None` when the text
    /// does not have the fields the catalog lists (the type changed since it was read).
    fn composite(&self, fields: &[(String, u32)], text: &str, depth: usize) -> Option<Value> {
        let mut values = parse_record(text).ok()?;
        // `()` is both no fields and one NULL field; the catalog tells which.
        if fields.is_empty() && values == [None] {
            values.clear();
        }
        if values.len() != fields.len() {
            return None;
        }
        let object: Map<String, Value> = fields
            .iter()
            .zip(values)
            .map(|((name, type_oid), value)| {
                let value = match value {
                    None => Value::Null,
                    Some(text) => self.convert(*type_oid, Cow::Owned(text), depth),
                };
                (name.clone(), value)
            })
            .collect();
        Some(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::capture::value::type_oid::{INT4, NUMERIC, TEXT, TIMESTAMPTZ};

    const POSITIVE: u32 = 20_001;
    const POSITIVE_ALIAS: u32 = 20_002;
    const PAIR: u32 = 20_003;
    const PAIR_ARRAY: u32 = 20_004;
    const NESTED: u32 = 20_005;
    const MOOD: u32 = 20_006;
    const POSITIVE_ARRAY: u32 = 20_007;
    const PRICE: u32 = 20_008;

    fn catalog() -> TypeCatalog {
        let mut catalog = TypeCatalog::default();
        catalog.learn([
            (POSITIVE, TypeShape::Domain { base: INT4 }),
            (POSITIVE_ALIAS, TypeShape::Domain { base: POSITIVE }),
            (PRICE, TypeShape::Domain { base: NUMERIC }),
            (
                PAIR,
                TypeShape::Composite {
                    fields: vec![("a".into(), INT4), ("b".into(), TEXT)],
                },
            ),
            (PAIR_ARRAY, TypeShape::Array { element: PAIR }),
            (POSITIVE_ARRAY, TypeShape::Array { element: POSITIVE }),
            (
                NESTED,
                TypeShape::Composite {
                    fields: vec![
                        ("pair".into(), PAIR),
                        ("pairs".into(), PAIR_ARRAY),
                        ("at".into(), TIMESTAMPTZ),
                        ("amount".into(), POSITIVE_ALIAS),
                    ],
                },
            ),
            (MOOD, TypeShape::Text),
        ]);
        catalog
    }

    #[test]
    fn domains_take_their_base_types_form_nested_too() {
        let catalog = catalog();
        assert_eq!(catalog.to_json(POSITIVE, "5"), json!(5));
        assert_eq!(catalog.to_json(POSITIVE_ALIAS, "7"), json!(7));
        assert_eq!(catalog.to_json(PRICE, "9.90"), json!("9.90"));
        assert_eq!(
            catalog.to_json(POSITIVE_ARRAY, "{1,NULL,3}"),
            json!([1, null, 3])
        );
    }

    #[test]
    fn composites_are_objects_of_their_fields() {
        let catalog = catalog();
        assert_eq!(
            catalog.to_json(PAIR, "(7,seven)"),
            json!({"a": 7, "b": "seven"})
        );
        assert_eq!(catalog.to_json(PAIR, "(,)"), json!({"a": null, "b": null}));
        assert_eq!(
            catalog.to_json(PAIR_ARRAY, r#"{"(1,one)","(2,\"t w,o\")",NULL}"#),
            json!([{"a": 1, "b": "one"}, {"a": 2, "b": "t w,o"}, null])
        );
        assert_eq!(
            catalog.to_json(
                NESTED,
                r#"("(1,x)","{""(2,y)""}","2026-11-22 10:00:00+02",4)"#
            ),
            json!({
                "pair": {"a": 1, "b": "x"},
                "pairs": [{"a": 2, "b": "y"}],
                "at": "2026-11-22T10:00:00+02:00",
                "amount": 4
            })
        );
    }

    #[test]
    fn what_does_not_fit_keeps_its_text() {
        let catalog = catalog();
        // A field more than the catalog knows: the type changed since it was read.
        assert_eq!(catalog.to_json(PAIR, "(1,a,b)"), json!("(1,a,b)"));
        assert_eq!(catalog.to_json(PAIR, "not a record"), json!("not a record"));
        assert_eq!(catalog.to_json(MOOD, "happy"), json!("happy"));
        // Unknown user types keep their text; built-in ones convert without a catalog.
        assert_eq!(TypeCatalog::default().to_json(POSITIVE, "5"), json!("5"));
        assert_eq!(TypeCatalog::default().to_json(INT4, "5"), json!(5));
    }

    #[test]
    fn a_cyclic_catalog_answer_ends() {
        let mut catalog = TypeCatalog::default();
        catalog.learn([
            (30_001, TypeShape::Domain { base: 30_002 }),
            (30_002, TypeShape::Domain { base: 30_001 }),
        ]);
        assert_eq!(catalog.to_json(30_001, "1"), json!("1"));
    }
}
