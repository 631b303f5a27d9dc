//! The TOML configuration of CONTRACT §2: loading, `${NAME}` expansion, defaults and
//! validation.
//!
//! Loading never stops at the first mistake: every problem found in the file is
//! reported, each naming the file, the key path and the reason, e.g.
//! `config/rowhook.toml: webhooks[1].url: missing required key`.
//!
//! Environment variables: `${NAME}` in any string value is replaced by variable `NAME`;
//! `$${` stands for a literal `${` (so `$${{ item.price }}` renders a dollar sign before
//! a Liquid output); any other `$` is kept. Keys are never expanded.
//!
//! Relative paths (`store.path`) are taken relative to the working directory, not to the
//! configuration file, so that the defaults `config/rowhook.toml` and `data/rowhook` sit
//! side by side in the directory rowhook is started from.

mod alerts;
mod delivery;
mod duration;
mod environment;
mod inbound;
mod reader;
mod relations;
mod sections;
mod size;
mod table_name;
mod webhook;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use thiserror::Error;

use crate::change::{Action, TableName};
use crate::secret::{MASK, Secrets, mask_url_password};

pub use alerts::{AlertConfig, AlertKind};
pub use duration::{DurationError, format_duration, parse_duration};
pub use inbound::{
    ColumnSource, EndpointConfig, InboundConfig, PathStep, SenderCheck, parse_column_source,
};
pub use relations::{
    DEFAULT_HAS_MANY_LIMIT, Includes, MAX_INCLUDE_DEPTH, OrderBy, RelationConfig, RelationKind,
};
pub use size::parse_size;
pub use table_name::{TableNameError, parse_table_name};

/// Where the configuration is read from when neither `--config` nor `ROWHOOK_CONFIG` says.
pub const DEFAULT_FILE: &str = "config/rowhook.toml";

#[derive(Clone, Debug)]
pub struct Config {
    /// The file the configuration was read from, for messages.
    pub file: PathBuf,
    pub source: SourceConfig,
    pub store: StoreConfig,
    /// `None` runs without the admin server.
    pub admin: Option<AdminConfig>,
    /// The global `[delivery]` table; `concurrency` here caps all webhooks together.
    pub delivery: DeliveryConfig,
    /// `[delivery] deny`, the SSRF guard (CONTRACT §12): one list for every webhook and
    /// alert target, so it is not a per-webhook key (all share one HTTP client).
    pub deny: crate::deny::DenyList,
    /// By model name.
    pub models: BTreeMap<String, ModelConfig>,
    /// In file order.
    pub webhooks: Vec<WebhookConfig>,
    /// `[[alerts]]` targets, in file order (CONTRACT §9).
    pub alerts: Vec<AlertConfig>,
    /// `[inbound]`: webhooks received into tables (CONTRACT §11); `None` without it.
    pub inbound: Option<InboundConfig>,
    /// What is masked wherever it is shown (history, pages, API, logs, `send-test`).
    pub secrets: Secrets,
}

impl Config {
    pub fn webhook(&self, name: &str) -> Option<&WebhookConfig> {
        self.webhooks.iter().find(|webhook| webhook.name == name)
    }

    /// The models whose changes are captured: all but those used only in relations,
    /// which are looked up, never captured (CONTRACT §8). A model with neither webhooks
    /// nor a part in relations is captured, so that `tail` shows its changes.
    pub fn captured_models(&self) -> impl Iterator<Item = &ModelConfig> {
        self.models.values().filter(|model| {
            let has_webhook = self
                .webhooks
                .iter()
                .any(|webhook| webhook.model == model.name);
            let is_related = self.models.values().any(|other| {
                other
                    .relations
                    .values()
                    .any(|relation| relation.model == model.name)
            });
            has_webhook || !is_related
        })
    }

    /// The model that captures `table`; validation makes it unique.
    pub fn model_for_table(&self, table: &TableName) -> Option<&ModelConfig> {
        self.models.values().find(|model| &model.table == table)
    }
}

#[derive(Clone)]
pub struct SourceConfig {
    /// A libpq-style connection string, already checked to parse as a
    /// [`DatabaseUrl`](crate::postgres::DatabaseUrl).
    pub url: String,
    /// Whether `url` held a `${NAME}` reference: show it only through
    /// [`mask_url_password`].
    pub url_from_environment: bool,
    pub mode: SourceMode,
    pub slot: String,
    pub publication: String,
    /// A captured row larger than this many bytes becomes a failed event with the reason
    /// instead of being read into memory (CONTRACT §12).
    pub max_row: usize,
}

impl fmt::Debug for SourceConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("SourceConfig")
            .field("url", &mask_url_password(&self.url))
            .field("url_from_environment", &self.url_from_environment)
            .field("mode", &self.mode)
            .field("slot", &self.slot)
            .field("publication", &self.publication)
            .field("max_row", &self.max_row)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourceMode {
    /// Logical replication with pgoutput.
    Replication,
    /// Trigger-filled outbox table with LISTEN/NOTIFY as a wake-up.
    Notify,
}

impl SourceMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceMode::Replication => "replication",
            SourceMode::Notify => "notify",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreConfig {
    pub backend: StoreBackend,
    /// The sled directory (unused by the PostgreSQL backend).
    pub path: PathBuf,
    /// Delivered and failed events older than this are pruned.
    pub retention: Duration,
    /// How long a claim of a shared store outlives its instance: the longest attempt
    /// timeout of the configuration plus a margin, so that a live instance's attempt is
    /// never taken over, and a dead one's claims come back soon after.
    pub claim_lease: Duration,
}

impl StoreConfig {
    /// An embedded store at `path`, with the default retention.
    pub fn sled(path: PathBuf) -> StoreConfig {
        StoreConfig {
            backend: StoreBackend::Sled,
            path,
            retention: sections::DEFAULT_RETENTION,
            claim_lease: sections::DEFAULT_CLAIM_LEASE,
        }
    }
}

/// `store.backend` (CONTRACT §2, §10).
#[derive(Clone, PartialEq, Eq)]
pub enum StoreBackend {
    /// Embedded, one process.
    Sled,
    /// Tables of schema `rowhook` in this database, shared by any number of instances.
    Postgres {
        url: String,
        /// Notify mode with the store in the source database: drained outbox rows are
        /// deleted in the transaction that stores their events.
        drains_outbox: bool,
    },
}

impl StoreBackend {
    pub fn as_str(&self) -> &'static str {
        match self {
            StoreBackend::Sled => "sled",
            StoreBackend::Postgres { .. } => "postgres",
        }
    }
}

impl fmt::Debug for StoreBackend {
    /// Never shows the URL: it may carry a password.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

#[derive(Clone)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    pub token: String,
}

impl fmt::Debug for AdminConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("AdminConfig")
            .field("listen", &self.listen)
            .field("token", &MASK)
            .finish()
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryConfig {
    /// For the whole request, connecting included.
    pub timeout: Duration,
    /// One entry per attempt: the delay before it (CONTRACT §2, "Retry schedule").
    pub retry: Vec<Duration>,
    /// Lower case.
    pub event_id_header: String,
    /// Requests in flight at once: all webhooks together in [`Config::delivery`], the
    /// webhook's own cap in [`WebhookConfig::delivery`].
    pub concurrency: usize,
    /// At most this many attempts started per period, per webhook (CONTRACT §9); in
    /// [`Config::delivery`] the default for every webhook.
    pub rate: Option<crate::rate::Rate>,
    /// A webhook failing without a single success this long pauses itself (CONTRACT §9).
    pub pause_after: Option<Duration>,
    /// Whether one row's events wait for each other (CONTRACT §9).
    pub ordering: Ordering,
    /// A rendered request (URL, headers and body) larger than this many bytes is a failed
    /// event with the reason (CONTRACT §12).
    pub max_body: usize,
}

/// How a webhook's events are ordered among themselves (CONTRACT §9).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Ordering {
    /// Each event goes when due; a retry may land after a later change of its row.
    #[default]
    None,
    /// The events of one row (its primary key) are attempted one at a time, in commit
    /// order: an event waits while an earlier one of its row is pending.
    Row,
}

impl Ordering {
    pub fn as_str(self) -> &'static str {
        match self {
            Ordering::None => "none",
            Ordering::Row => "row",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelConfig {
    pub name: String,
    pub table: TableName,
    /// By relation name (CONTRACT §8).
    pub relations: BTreeMap<String, RelationConfig>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub const ALL: [Method; 5] = [
        Method::Get,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// `GET` and `DELETE` send no body: their `fields` become the query string.
    pub fn sends_body(self) -> bool {
        !matches!(self, Method::Get | Method::Delete)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Form,
    Text,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Form => "form",
            Format::Text => "text",
        }
    }
}

#[derive(Clone)]
pub struct WebhookConfig {
    pub name: String,
    pub model: String,
    /// Without duplicates, in [`Action`] order.
    pub on: Vec<Action>,
    pub active: bool,
    pub method: Method,
    /// A Liquid template.
    pub url: String,
    pub format: Format,
    /// Name and path-or-template, in file order.
    pub fields: Option<Vec<(String, String)>>,
    pub body: Option<String>,
    /// Name as written and value template, in file order.
    pub headers: Vec<(String, String)>,
    /// Lower-cased names of the headers whose value came from `${NAME}`.
    pub secret_headers: BTreeSet<String>,
    pub when: Option<String>,
    pub columns: Option<Vec<String>>,
    /// The relations looked up for this webhook's `item` (CONTRACT §8).
    pub include: Includes,
    /// `whsec_` and the base64 key, checked to decode.
    pub secret: Option<String>,
    /// The global `[delivery]` with this webhook's own keys applied.
    pub delivery: DeliveryConfig,
    /// The `[[alerts]]` targets told about this webhook, by name.
    pub alerts: Vec<String>,
}

impl WebhookConfig {
    /// Whether the value of header `name` must be shown as `••••`: `Authorization`, and
    /// every header whose value came from the environment.
    pub fn is_secret_header(&self, name: &str) -> bool {
        let name = name.to_ascii_lowercase();
        name == "authorization" || self.secret_headers.contains(&name)
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| {
                let shown = if self.is_secret_header(name) {
                    MASK
                } else {
                    value
                };
                (name.as_str(), shown)
            })
            .collect();
        formatter
            .debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("model", &self.model)
            .field("on", &self.on)
            .field("active", &self.active)
            .field("method", &self.method)
            .field("url", &self.url)
            .field("format", &self.format)
            .field("fields", &self.fields)
            .field("body", &self.body)
            .field("headers", &headers)
            .field("secret_headers", &self.secret_headers)
            .field("when", &self.when)
            .field("columns", &self.columns)
            .field("secret", &self.secret.as_ref().map(|_| MASK))
            .field("delivery", &self.delivery)
            .finish()
    }
}

/// One problem in the configuration. `key` is empty for problems with the file as a
/// whole (unreadable, not TOML).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{file}: {location}{reason}", file = .file.display(), location = key_prefix(.key))]
pub struct ConfigError {
    pub file: PathBuf,
    pub key: String,
    pub reason: String,
}

fn key_prefix(key: &str) -> String {
    if key.is_empty() {
        String::new()
    } else {
        format!("{key}: ")
    }
}

/// Every problem found, in file order as far as possible; displayed one per line.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{}", lines(.0))]
pub struct ConfigErrors(pub Vec<ConfigError>);

fn lines(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ConfigError::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads and validates the configuration at `path`, taking `${NAME}` from the process
/// environment.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        ConfigErrors(vec![ConfigError {
            file: path.to_path_buf(),
            key: String::new(),
            reason: format!("cannot read the file: {error}"),
        }])
    })?;
    parse(path, &text, &|name| std::env::var(name).ok())
}

/// Validates the configuration `text`, read from `file`, taking `${NAME}` from
/// `environment`.
pub fn parse(
    file: &Path,
    text: &str,
    environment: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigErrors> {
    let document: toml::Table = text
        .parse()
        .map_err(|error| ConfigErrors(vec![syntax_error(file, text, &error)]))?;
    let mut reader = reader::Reader::new(file, environment);
    reader.reject_unknown_keys(
        "",
        &document,
        &[
            "source", "store", "admin", "delivery", "models", "webhooks", "alerts", "inbound",
        ],
    );
    let source = sections::read_source(&mut reader, &document);
    let mut store = sections::read_store(&mut reader, &document, &source);
    let admin = sections::read_admin(&mut reader, &document);
    let delivery = delivery::read_global(&mut reader, &document);
    let deny = delivery::read_deny(&mut reader, &document);
    let models = sections::read_models(&mut reader, &document);
    relations::check_related_models(&mut reader, &models);
    let alerts = alerts::read_alerts(&mut reader, &document, &delivery);
    let inbound = inbound::read_inbound(&mut reader, &document);
    let webhooks = webhook::read_webhooks(&mut reader, &document, &models, &delivery, &alerts);
    let substituted = reader.take_substituted();
    let errors = reader.into_errors();
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    let longest_attempt = webhooks
        .iter()
        .map(|webhook| webhook.delivery.timeout)
        .chain(alerts.iter().map(|alert| alert.delivery.timeout))
        .fold(delivery.timeout, Duration::max);
    store.claim_lease = longest_attempt + sections::CLAIM_LEASE_MARGIN;
    let secrets = secrets(
        substituted,
        admin.as_ref(),
        &webhooks,
        &alerts,
        inbound.as_ref(),
    );
    Ok(Config {
        secrets,
        file: file.to_path_buf(),
        source,
        store,
        admin,
        delivery,
        deny,
        models: models
            .into_iter()
            .filter_map(|(name, model)| Some((name, model?)))
            .collect(),
        webhooks,
        alerts,
        inbound,
    })
}

/// The configuration's secrets (CONTRACT §6, §12): what came from `${VAR}`, and what is
/// a secret by its key whatever its origin.
fn secrets(
    substituted: Vec<String>,
    admin: Option<&AdminConfig>,
    webhooks: &[WebhookConfig],
    alerts: &[AlertConfig],
    inbound: Option<&InboundConfig>,
) -> Secrets {
    let signing = webhooks
        .iter()
        .filter_map(|webhook| webhook.secret.clone())
        .chain(alerts.iter().filter_map(|alert| alert.secret.clone()));
    let authorization = webhooks
        .iter()
        .flat_map(|webhook| &webhook.headers)
        .chain(alerts.iter().flat_map(|alert| &alert.headers))
        .filter(|(name, _)| name.eq_ignore_ascii_case("authorization"))
        .map(|(_, value)| value.clone());
    let inbound = inbound
        .into_iter()
        .flat_map(|inbound| &inbound.endpoints)
        .filter_map(|endpoint| match &endpoint.check {
            SenderCheck::Basic { password, .. } => Some(password.clone()),
            SenderCheck::Signature { secret } => Some(secret.clone()),
            SenderCheck::None => None,
        });
    Secrets::new(
        substituted
            .into_iter()
            .chain(admin.map(|admin| admin.token.clone()))
            .chain(signing)
            .chain(authorization)
            .chain(inbound),
    )
}

/// A TOML syntax error on one line, with the line and column where it was found.
fn syntax_error(file: &Path, text: &str, error: &toml::de::Error) -> ConfigError {
    let message = error
        .message()
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    let reason = match error.span() {
        Some(span) => {
            let (line, column) = line_and_column(text, span.start);
            format!("TOML syntax error at line {line}, column {column}: {message}")
        }
        None => format!("TOML syntax error: {message}"),
    };
    ConfigError {
        file: file.to_path_buf(),
        key: String::new(),
        reason,
    }
}

/// One-based line and column (in characters) of byte `offset` in `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let line = before.matches('\n').count() + 1;
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}
