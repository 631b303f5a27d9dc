//! `[inbound]` and `[[inbound.endpoints]]` (CONTRACT §11): rowhook receiving webhooks
//! into PostgreSQL tables.

use std::fmt;
use std::net::SocketAddr;

use toml::Table;

use super::reader::{Reader, index_path, key_path};
use super::webhook::{read_name, read_secret};
use super::{TableName, parse_table_name};
use crate::secret::MASK;

const DEFAULT_LISTEN: &str = "127.0.0.1:8481";
const DEFAULT_MAX_BODY: usize = 1024 * 1024;
const ENDPOINT_KEYS: [&str; 8] = [
    "name", "basic", "secret", "table", "columns", "dedupe", "respond", "max_body",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboundConfig {
    pub listen: SocketAddr,
    pub endpoints: Vec<EndpointConfig>,
}

impl InboundConfig {
    pub fn endpoint(&self, name: &str) -> Option<&EndpointConfig> {
        self.endpoints.iter().find(|endpoint| endpoint.name == name)
    }
}

/// One inbound endpoint: `POST /in/<name>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointConfig {
    pub name: String,
    pub check: SenderCheck,
    pub table: TableName,
    /// Column name and where its value comes from, in file order.
    pub columns: Vec<(String, ColumnSource)>,
    /// A column with a unique index: a request whose value is there already adds no row.
    pub dedupe: Option<String>,
    pub respond_status: u16,
    pub respond_body: String,
    pub max_body: usize,
}

/// How an endpoint knows who sent a request.
#[derive(Clone, PartialEq, Eq)]
pub enum SenderCheck {
    None,
    Basic {
        user: String,
        password: String,
    },
    /// Standard Webhooks: `whsec_…`.
    Signature {
        secret: String,
    },
}

impl fmt::Debug for SenderCheck {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SenderCheck::None => formatter.write_str("None"),
            SenderCheck::Basic { user, .. } => write!(formatter, "Basic({user}, {MASK})"),
            SenderCheck::Signature { .. } => write!(formatter, "Signature({MASK})"),
        }
    }
}

/// Where a column's value comes from (CONTRACT §11).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColumnSource {
    /// A request header, by lower-case name.
    Header(String),
    /// A query string parameter.
    Query(String),
    /// The whole body as JSON (or as text when it is not JSON).
    Body,
    /// A path into the JSON body: keys and array indexes.
    BodyPath(Vec<PathStep>),
    /// The time the request was received.
    Now,
    /// A fixed text.
    Text(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathStep {
    Key(String),
    Index(usize),
}

/// Reads `headers.NAME`, `query.NAME`, `body`, `body.a.b[0]`, `now` or `'text'`.
pub fn parse_column_source(text: &str) -> Result<ColumnSource, String> {
    if let Some(quoted) = text
        .strip_prefix('\'')
        .and_then(|rest| rest.strip_suffix('\''))
    {
        return Ok(ColumnSource::Text(quoted.to_string()));
    }
    if text == "now" {
        return Ok(ColumnSource::Now);
    }
    if text == "body" {
        return Ok(ColumnSource::Body);
    }
    if let Some(name) = text
        .strip_prefix("headers.")
        .filter(|name| !name.is_empty())
    {
        return Ok(ColumnSource::Header(name.to_ascii_lowercase()));
    }
    if let Some(name) = text.strip_prefix("query.").filter(|name| !name.is_empty()) {
        return Ok(ColumnSource::Query(name.to_string()));
    }
    let expected = "expected headers.NAME, query.NAME, body, body.a.b[0], now or 'text'";
    let Some(path) = text.strip_prefix("body") else {
        return Err(format!("unknown source {text:?}: {expected}"));
    };
    parse_path(path)
        .map(ColumnSource::BodyPath)
        .ok_or_else(|| format!("invalid body path {text:?}: {expected}"))
}

/// `.a.b[0][1].c` into steps.
fn parse_path(mut rest: &str) -> Option<Vec<PathStep>> {
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let key = &after[..end];
            if key.is_empty() {
                return None;
            }
            steps.push(PathStep::Key(key.to_string()));
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            steps.push(PathStep::Index(after[..end].parse().ok()?));
            rest = &after[end + 1..];
        } else {
            return None;
        }
    }
    (!steps.is_empty()).then_some(steps)
}

pub(super) fn read_inbound(reader: &mut Reader, document: &Table) -> Option<InboundConfig> {
    let table = reader.table(document, "", "inbound")?;
    let path = "inbound";
    reader.reject_unknown_keys(path, table, &["listen", "endpoints"]);
    let listen_text = reader
        .string(table, path, "listen")
        .map_or_else(|| DEFAULT_LISTEN.to_string(), |listen| listen.text);
    let listen = listen_text.parse::<SocketAddr>().unwrap_or_else(|_| {
        reader.error(
            key_path(path, "listen"),
            format!("invalid address {listen_text:?}: expected an IP address and a port such as {DEFAULT_LISTEN}"),
        );
        SocketAddr::from(([127, 0, 0, 1], 8481))
    });
    let mut endpoints: Vec<EndpointConfig> = Vec::new();
    for (index, endpoint_table) in reader.array_of_tables(table, path, "endpoints") {
        let endpoint_path = index_path("inbound.endpoints", index);
        let endpoint = read_endpoint(reader, endpoint_table, &endpoint_path);
        if endpoints.iter().any(|other| other.name == endpoint.name) {
            reader.error(
                key_path(&endpoint_path, "name"),
                format!("duplicate endpoint name {:?}", endpoint.name),
            );
        }
        endpoints.push(endpoint);
    }
    Some(InboundConfig { listen, endpoints })
}

fn read_endpoint(reader: &mut Reader, table: &Table, path: &str) -> EndpointConfig {
    reader.reject_unknown_keys(path, table, &ENDPOINT_KEYS);
    let name = read_name(reader, table, path, "endpoint");
    let check = read_check(reader, table, path);
    let table_name = reader
        .required_string(table, path, "table")
        .and_then(|text| match parse_table_name(&text.text) {
            Ok(name) => Some(name),
            Err(error) => {
                reader.error(key_path(path, "table"), error);
                None
            }
        })
        .unwrap_or_else(|| TableName::new("public", ""));
    let columns_path = key_path(path, "columns");
    let mut columns = Vec::new();
    match reader.string_table(table, path, "columns") {
        Some(entries) if !entries.is_empty() => {
            for (column, source) in entries {
                match parse_column_source(&source.text) {
                    Ok(source) => columns.push((column, source)),
                    Err(reason) => reader.error(key_path(&columns_path, &column), reason),
                }
            }
        }
        Some(_) => reader.error(&columns_path, "must name at least one column"),
        None => reader.error(&columns_path, "missing required key"),
    }
    let dedupe = reader
        .string(table, path, "dedupe")
        .map(|dedupe| dedupe.text);
    if let Some(dedupe) = &dedupe
        && !columns.iter().any(|(column, _)| column == dedupe)
    {
        reader.error(
            key_path(path, "dedupe"),
            format!("{dedupe:?} is not one of this endpoint's columns"),
        );
    }
    let (respond_status, respond_body) = read_respond(reader, table, path);
    let max_body = reader
        .size(table, path, "max_body")
        .unwrap_or(DEFAULT_MAX_BODY);
    EndpointConfig {
        name,
        check,
        table: table_name,
        columns,
        dedupe,
        respond_status,
        respond_body,
        max_body,
    }
}

fn read_check(reader: &mut Reader, table: &Table, path: &str) -> SenderCheck {
    let secret = read_secret(reader, table, path);
    let basic = reader.table(table, path, "basic").map(|basic| {
        let basic_path = key_path(path, "basic");
        reader.reject_unknown_keys(&basic_path, basic, &["user", "password"]);
        let user = reader.required_string(basic, &basic_path, "user");
        let password = reader.required_string(basic, &basic_path, "password");
        (
            user.map(|user| user.text).unwrap_or_default(),
            password.map(|password| password.text).unwrap_or_default(),
        )
    });
    match (basic, secret) {
        (Some(_), Some(_)) => {
            reader.error(
                key_path(path, "basic"),
                "give basic or secret, not both: a sender is checked one way",
            );
            SenderCheck::None
        }
        (Some((user, password)), None) => SenderCheck::Basic { user, password },
        (None, Some(secret)) => SenderCheck::Signature { secret },
        (None, None) => SenderCheck::None,
    }
}

fn read_respond(reader: &mut Reader, table: &Table, path: &str) -> (u16, String) {
    let Some(respond) = reader.table(table, path, "respond") else {
        return (200, "ok".to_string());
    };
    let respond_path = key_path(path, "respond");
    reader.reject_unknown_keys(&respond_path, respond, &["status", "body"]);
    let status = match reader.integer(respond, &respond_path, "status") {
        Some(status) if (200..300).contains(&status) => status as u16,
        Some(_) => {
            reader.error(
                key_path(&respond_path, "status"),
                "must be a 2xx status: senders retry anything else",
            );
            200
        }
        None => 200,
    };
    let body = reader
        .string(respond, &respond_path, "body")
        .map_or_else(|| "ok".to_string(), |body| body.text);
    (status, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn column_sources() {
        assert_eq!(
            parse_column_source("headers.Webhook-Id"),
            Ok(ColumnSource::Header("webhook-id".into()))
        );
        assert_eq!(
            parse_column_source("query.source"),
            Ok(ColumnSource::Query("source".into()))
        );
        assert_eq!(parse_column_source("body"), Ok(ColumnSource::Body));
        assert_eq!(parse_column_source("now"), Ok(ColumnSource::Now));
        assert_eq!(
            parse_column_source("'bpium'"),
            Ok(ColumnSource::Text("bpium".into()))
        );
        assert_eq!(
            parse_column_source("body.task.lines[0].sku"),
            Ok(ColumnSource::BodyPath(vec![
                PathStep::Key("task".into()),
                PathStep::Key("lines".into()),
                PathStep::Index(0),
                PathStep::Key("sku".into()),
            ]))
        );
        for bad in [
            "body.", "body[x]", "bodyx", "headers.", "item.id", "body..a",
        ] {
            assert!(parse_column_source(bad).is_err(), "{bad}");
        }
    }
}
