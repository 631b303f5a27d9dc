//! The `[source]`, `[store]`, `[admin]` and `[models.*]` tables.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use toml::{Table, Value};

use super::reader::{Reader, key_path};
use super::relations;
use super::table_name::{MAX_IDENTIFIER_BYTES, parse_table_name};
use super::{AdminConfig, ModelConfig, SourceConfig, SourceMode, StoreBackend, StoreConfig};
use crate::postgres::DatabaseUrl;

const DEFAULT_SLOT_AND_PUBLICATION: &str = "rowhook";
const DEFAULT_STORE_PATH: &str = "data/rowhook";
pub(super) const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Beyond the longest attempt timeout: recording an attempt takes a moment too.
pub(super) const CLAIM_LEASE_MARGIN: Duration = Duration::from_secs(10);
pub(super) const DEFAULT_CLAIM_LEASE: Duration = Duration::from_secs(13);
const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:8480";
/// `source.max_row` when the file does not say (CONTRACT §12).
pub(super) const DEFAULT_MAX_ROW: usize = 64 * 1024 * 1024;

pub(super) fn read_source(reader: &mut Reader, document: &Table) -> SourceConfig {
    // A missing [source] reads as empty, so that the missing url is reported by its own
    // key path.
    let empty = Table::new();
    let table = reader.table(document, "", "source").unwrap_or(&empty);
    let path = "source";
    reader.reject_unknown_keys(
        path,
        table,
        &["url", "mode", "slot", "publication", "max_row"],
    );

    let url = reader.required_string(table, path, "url");
    if let Some(url) = &url {
        if url.text.is_empty() {
            reader.error(key_path(path, "url"), "must not be empty");
        } else if let Err(error) = DatabaseUrl::parse(&url.text) {
            reader.error(key_path(path, "url"), error);
        }
    }

    let mode = reader
        .string(table, path, "mode")
        .and_then(|mode| match mode.text.as_str() {
            "replication" => Some(SourceMode::Replication),
            "notify" => Some(SourceMode::Notify),
            other => {
                reader.error(
                    key_path(path, "mode"),
                    format!("unknown mode {other:?}: expected replication or notify"),
                );
                None
            }
        })
        .unwrap_or(SourceMode::Replication);

    let slot = reader.string(table, path, "slot").map_or_else(
        || DEFAULT_SLOT_AND_PUBLICATION.to_string(),
        |slot| slot.text,
    );
    let is_slot_name = |name: &str| {
        !name.is_empty()
            && name.len() <= MAX_IDENTIFIER_BYTES
            && name
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_')
    };
    if !is_slot_name(&slot) {
        reader.error(
            key_path(path, "slot"),
            format!(
                "invalid slot name {slot:?}: expected 1 to 63 lower-case letters, digits and \
                 underscores"
            ),
        );
    }

    let publication = reader.string(table, path, "publication").map_or_else(
        || DEFAULT_SLOT_AND_PUBLICATION.to_string(),
        |name| name.text,
    );
    if publication.is_empty() {
        reader.error(key_path(path, "publication"), "must not be empty");
    } else if publication.len() > MAX_IDENTIFIER_BYTES {
        reader.error(
            key_path(path, "publication"),
            "longer than 63 bytes (PostgreSQL would truncate it)",
        );
    }

    let max_row = reader
        .size(table, path, "max_row")
        .unwrap_or(DEFAULT_MAX_ROW);

    SourceConfig {
        url_from_environment: url.as_ref().is_some_and(|url| url.from_environment),
        url: url.map(|url| url.text).unwrap_or_default(),
        mode,
        slot,
        publication,
        max_row,
    }
}

pub(super) fn read_store(
    reader: &mut Reader,
    document: &Table,
    source: &SourceConfig,
) -> StoreConfig {
    let empty = Table::new();
    let table = reader.table(document, "", "store").unwrap_or(&empty);
    let path = "store";
    reader.reject_unknown_keys(path, table, &["backend", "path", "url", "retention"]);
    let url = reader.string(table, path, "url");
    let backend = match reader.string(table, path, "backend") {
        None => StoreBackend::Sled,
        Some(backend) if backend.text == "sled" => StoreBackend::Sled,
        Some(backend) if backend.text == "postgres" => {
            let url = url
                .as_ref()
                .map_or_else(|| source.url.clone(), |url| url.text.clone());
            if let Err(error) = DatabaseUrl::parse(&url) {
                reader.error(key_path(path, "url"), error);
            }
            // The same URL means the same database (a different spelling of it only
            // costs the outbox rows a separate delete).
            let drains_outbox = source.mode == SourceMode::Notify && url == source.url;
            StoreBackend::Postgres { url, drains_outbox }
        }
        Some(other) => {
            reader.error(
                key_path(path, "backend"),
                format!(
                    "unknown backend {:?}: expected sled or postgres",
                    other.text
                ),
            );
            StoreBackend::Sled
        }
    };
    if url.is_some() && backend == StoreBackend::Sled {
        reader.error(
            key_path(path, "url"),
            "is for backend = \"postgres\"; the sled store lives in store.path",
        );
    }
    let store_path = reader.string(table, path, "path").map_or_else(
        || DEFAULT_STORE_PATH.to_string(),
        |store_path| store_path.text,
    );
    if store_path.is_empty() {
        reader.error(key_path(path, "path"), "must not be empty");
    }
    StoreConfig {
        backend,
        path: PathBuf::from(store_path),
        retention: reader
            .duration(table, path, "retention")
            .unwrap_or(DEFAULT_RETENTION),
        claim_lease: DEFAULT_CLAIM_LEASE,
    }
}

pub(super) fn read_admin(reader: &mut Reader, document: &Table) -> Option<AdminConfig> {
    let table = reader.table(document, "", "admin")?;
    let path = "admin";
    reader.reject_unknown_keys(path, table, &["listen", "token"]);
    let listen_text = reader
        .string(table, path, "listen")
        .map_or_else(|| DEFAULT_ADMIN_LISTEN.to_string(), |listen| listen.text);
    let listen = match listen_text.parse::<SocketAddr>() {
        Ok(listen) => Some(listen),
        Err(_) => {
            reader.error(
                key_path(path, "listen"),
                format!(
                    "invalid address {listen_text:?}: expected an IP address and a port such \
                     as 127.0.0.1:8480"
                ),
            );
            None
        }
    };
    let token = reader.required_string(table, path, "token");
    if token.as_ref().is_some_and(|token| token.text.is_empty()) {
        reader.error(key_path(path, "token"), "must not be empty");
    }
    Some(AdminConfig {
        listen: listen.unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8480))),
        token: token.map(|token| token.text).unwrap_or_default(),
    })
}

/// Every declared model by name; `None` for a model with a mistake, which is reported
/// but still counts as declared so that webhooks naming it are not reported too.
pub(super) fn read_models(
    reader: &mut Reader,
    document: &Table,
) -> BTreeMap<String, Option<ModelConfig>> {
    let mut models = BTreeMap::new();
    let Some(table) = reader.table(document, "", "models") else {
        if !document.contains_key("models") {
            reader.error(
                "models",
                "at least one model must be declared ([models.NAME])",
            );
        }
        return models;
    };
    if table.is_empty() {
        reader.error(
            "models",
            "at least one model must be declared ([models.NAME])",
        );
    }
    let mut owners: BTreeMap<_, String> = BTreeMap::new();
    for (name, value) in table {
        let path = key_path("models", name);
        let model = read_model(reader, &path, name, value);
        if let Some(model) = &model {
            if let Some(owner) = owners.get(&model.table) {
                reader.error(
                    key_path(&path, "table"),
                    format!("table {} is already captured by model {owner}", model.table),
                );
            } else {
                owners.insert(model.table.clone(), name.clone());
            }
        }
        models.insert(name.clone(), model);
    }
    models
}

fn read_model(reader: &mut Reader, path: &str, name: &str, value: &Value) -> Option<ModelConfig> {
    let is_model_name = !name.is_empty()
        && name
            .bytes()
            .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'_');
    if !is_model_name {
        reader.error(
            path,
            format!(
                "invalid model name {name:?}: expected lower-case letters, digits and underscores"
            ),
        );
    }
    let Value::Table(table) = value else {
        reader.mismatch(path, "a table such as { table = \"public.orders\" }", value);
        return None;
    };
    reader.reject_unknown_keys(path, table, &["table", "relations"]);
    let relations = relations::read_relations(reader, table, path);
    let text = reader.required_string(table, path, "table")?.text;
    match parse_table_name(&text) {
        Ok(table) if is_model_name => Some(ModelConfig {
            name: name.to_string(),
            table,
            relations,
        }),
        Ok(_) => None,
        Err(error) => {
            reader.error(key_path(path, "table"), error);
            None
        }
    }
}
