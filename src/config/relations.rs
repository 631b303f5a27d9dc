//! Relations between models and what a webhook includes of them (CONTRACT §8): read from
//! `[models.NAME.relations]` and a webhook's `include`, and checked against each other.

use std::collections::BTreeMap;

use toml::{Table, Value};

use super::ModelConfig;
use super::reader::{Reader, key_path};

/// A has-many relation returns at most this many rows unless its `limit` says otherwise.
pub const DEFAULT_HAS_MANY_LIMIT: u32 = 100;
const MAX_HAS_MANY_LIMIT: i64 = 10_000;
/// `include = ["lines.product.maker"]` is as deep as lookups go.
pub const MAX_INCLUDE_DEPTH: usize = 3;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelationConfig {
    pub name: String,
    /// The related model.
    pub model: String,
    pub kind: RelationKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RelationKind {
    /// This model's column `key` holds the related row's primary key: one row or none.
    BelongsTo { key: String },
    /// The related rows whose column `foreign_key` holds this row's primary key, in
    /// `order_by` order (the related primary key when unset), at most `limit`.
    HasMany {
        foreign_key: String,
        order_by: Option<OrderBy>,
        limit: u32,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderBy {
    pub column: String,
    pub descending: bool,
}

/// What a webhook includes: relation names of its model, each with what it includes of
/// the related model in turn.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Includes(pub BTreeMap<String, Includes>);

impl Includes {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Both trees in one: what a batch must look up for webhooks that include either.
    pub fn merge(&mut self, other: &Includes) {
        for (relation, nested) in &other.0 {
            self.0.entry(relation.clone()).or_default().merge(nested);
        }
    }
}

pub(super) fn is_relation_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
}

/// `[models.NAME.relations]`, each checked on its own; whether the related models exist
/// is checked once all models are read ([`check_related_models`]).
pub(super) fn read_relations(
    reader: &mut Reader,
    model: &Table,
    model_path: &str,
) -> BTreeMap<String, RelationConfig> {
    let mut relations = BTreeMap::new();
    let Some(table) = reader.table(model, model_path, "relations") else {
        return relations;
    };
    let path = key_path(model_path, "relations");
    for (name, value) in table {
        let relation_path = key_path(&path, name);
        if !is_relation_name(name) {
            reader.error(
                &relation_path,
                format!(
                    "invalid relation name {name:?}: expected lower-case letters, digits and underscores"
                ),
            );
            continue;
        }
        if let Some(relation) = read_relation(reader, &relation_path, name, value) {
            relations.insert(name.clone(), relation);
        }
    }
    relations
}

fn read_relation(
    reader: &mut Reader,
    path: &str,
    name: &str,
    value: &Value,
) -> Option<RelationConfig> {
    let Value::Table(table) = value else {
        reader.mismatch(
            path,
            "a table such as { model = \"customer\", key = \"customer_id\" }",
            value,
        );
        return None;
    };
    reader.reject_unknown_keys(
        path,
        table,
        &["model", "key", "foreign_key", "order_by", "limit"],
    );
    let model = reader.required_string(table, path, "model")?.text;
    let key = reader.string(table, path, "key").map(|key| key.text);
    let foreign_key = reader
        .string(table, path, "foreign_key")
        .map(|key| key.text);
    let kind = match (key, foreign_key) {
        (Some(_), Some(_)) => {
            reader.error(
                path,
                "give either `key` (belongs to) or `foreign_key` (has many), not both",
            );
            return None;
        }
        (None, None) => {
            reader.error(
                path,
                "missing `key` (belongs to: this model's column holding the related primary key) \
                 or `foreign_key` (has many: the related model's column holding this one's)",
            );
            return None;
        }
        (Some(key), None) => {
            for only_has_many in ["order_by", "limit"] {
                if table.contains_key(only_has_many) {
                    reader.error(
                        key_path(path, only_has_many),
                        "only a has-many relation (`foreign_key`) is ordered and limited",
                    );
                }
            }
            RelationKind::BelongsTo {
                key: column_name(reader, &key_path(path, "key"), key)?,
            }
        }
        (None, Some(foreign_key)) => RelationKind::HasMany {
            foreign_key: column_name(reader, &key_path(path, "foreign_key"), foreign_key)?,
            order_by: read_order_by(reader, table, path),
            limit: read_limit(reader, table, path),
        },
    };
    Some(RelationConfig {
        name: name.to_string(),
        model,
        kind,
    })
}

fn column_name(reader: &mut Reader, path: &str, name: String) -> Option<String> {
    if name.is_empty() {
        reader.error(path, "must name a column");
        return None;
    }
    Some(name)
}

/// `"id"`, `"created_at desc"`.
fn read_order_by(reader: &mut Reader, table: &Table, path: &str) -> Option<OrderBy> {
    let text = reader.string(table, path, "order_by")?.text;
    let words: Vec<&str> = text.split_whitespace().collect();
    let (column, descending) = match words.as_slice() {
        [column] => (*column, false),
        [column, direction] if direction.eq_ignore_ascii_case("asc") => (*column, false),
        [column, direction] if direction.eq_ignore_ascii_case("desc") => (*column, true),
        _ => {
            reader.error(
                key_path(path, "order_by"),
                format!("{text:?}: expected a column name, optionally followed by asc or desc"),
            );
            return None;
        }
    };
    Some(OrderBy {
        column: column.to_string(),
        descending,
    })
}

fn read_limit(reader: &mut Reader, table: &Table, path: &str) -> u32 {
    match reader.integer(table, path, "limit") {
        None => DEFAULT_HAS_MANY_LIMIT,
        Some(limit) if (1..=MAX_HAS_MANY_LIMIT).contains(&limit) => limit as u32,
        Some(limit) => {
            reader.error(
                key_path(path, "limit"),
                format!("{limit}: expected 1 to {MAX_HAS_MANY_LIMIT}"),
            );
            DEFAULT_HAS_MANY_LIMIT
        }
    }
}

/// Every relation names a declared model.
pub(super) fn check_related_models(
    reader: &mut Reader,
    models: &BTreeMap<String, Option<ModelConfig>>,
) {
    for (name, model) in models {
        let Some(model) = model else { continue };
        for relation in model.relations.values() {
            if !models.contains_key(&relation.model) {
                reader.error(
                    key_path(
                        &key_path(
                            &key_path(&key_path("models", name), "relations"),
                            &relation.name,
                        ),
                        "model",
                    ),
                    format!("no model {:?} is declared", relation.model),
                );
            }
        }
    }
}

/// A webhook's `include`: each entry a relation of its model, or a dotted path through
/// relations of related models, at most [`MAX_INCLUDE_DEPTH`] deep. A path includes every
/// relation along it.
pub(super) fn read_includes(
    reader: &mut Reader,
    table: &Table,
    path: &str,
    model: &str,
    models: &BTreeMap<String, Option<ModelConfig>>,
) -> Includes {
    let mut includes = Includes::default();
    let Some(entries) = reader.string_array(table, path, "include") else {
        return includes;
    };
    for (entry_path, entry) in entries {
        let segments: Vec<&str> = entry.text.split('.').collect();
        let mut visited = vec![model.to_string()];
        let mut current = model.to_string();
        let mut resolved = true;
        for segment in &segments {
            let Some(Some(current_model)) = models.get(&current) else {
                // The webhook's model is unknown: reported with its `model` key.
                resolved = false;
                break;
            };
            let Some(relation) = current_model.relations.get(*segment) else {
                let known: Vec<&str> = current_model.relations.keys().map(String::as_str).collect();
                let listing = if known.is_empty() {
                    "it declares none".to_string()
                } else {
                    format!("it has: {}", known.join(", "))
                };
                reader.error(
                    &entry_path,
                    format!("model {current} has no relation {segment:?} ({listing})"),
                );
                resolved = false;
                break;
            };
            current = relation.model.clone();
            visited.push(current.clone());
        }
        if !resolved {
            continue;
        }
        if segments.len() > MAX_INCLUDE_DEPTH {
            let round = visited
                .iter()
                .enumerate()
                .any(|(index, model)| visited[..index].contains(model));
            let cycle = if round {
                format!(" and goes round ({})", visited.join(" → "))
            } else {
                String::new()
            };
            reader.error(
                &entry_path,
                format!(
                    "{:?} is {} levels deep{cycle}; at most {MAX_INCLUDE_DEPTH} are looked up",
                    entry.text,
                    segments.len()
                ),
            );
            continue;
        }
        let mut node = &mut includes;
        for segment in segments {
            node = node.0.entry(segment.to_string()).or_default();
        }
    }
    includes
}
