//! libpq-style connection strings: `postgres://user:password@host:port/dbname?sslmode=…`
//! URLs and `host=… user=… password='a b'` keyword/value strings.
//!
//! Nothing is taken from the environment (`PGHOST`, `PGUSER`, `.pgpass`): the string
//! says everything. Defaults: host `localhost` over TCP, port 5432, user `postgres`,
//! database named like the user, `sslmode=prefer`.
//!
//! Errors never contain the password. Parameters libpq knows but rowhook does not need
//! are ignored when leaving them out changes neither correctness nor security (TCP
//! keepalives, `target_session_attrs`, …); those whose absence would (client
//! certificates, `options`, `require_auth`, …) are rejected, as are unknown ones.

mod parameters;
mod syntax;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

use crate::secret::MASK;
use parameters::Parameters;
use syntax::{parse_keyword_value, parse_url, url_scheme};

const DEFAULT_HOST: &str = "localhost";
const DEFAULT_PORT: u16 = 5432;
const DEFAULT_USER: &str = "postgres";

#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl {
    pub host: Host,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub dbname: String,
    pub sslmode: SslMode,
    pub sslrootcert: Option<PathBuf>,
    pub application_name: Option<String>,
    /// `None`: the connecting code's own default.
    pub connect_timeout: Option<Duration>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// A host name or IP address (IPv6 without brackets).
    Tcp(String),
    /// The directory holding the server's socket `.s.PGSQL.<port>`.
    Unix(PathBuf),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum DatabaseUrlError {
    #[error("the connection string is empty")]
    Empty,
    #[error("unsupported URL scheme {0:?}: expected postgres:// or postgresql://")]
    Scheme(String),
    #[error("expected a postgres:// URL or key=value pairs")]
    Unrecognized,
    #[error("invalid percent-encoding in the {0}")]
    PercentEncoding(&'static str),
    #[error("invalid port: expected a number from 1 to 65535")]
    Port,
    #[error("several hosts are not supported: give one host")]
    MultipleHosts,
    #[error("unterminated IPv6 address: expected \"]\"")]
    Ipv6,
    #[error(
        "expected key=value pairs: a parameter has no \"=\" (in key=value strings, quote \
         values that hold spaces: key='a b')"
    )]
    MissingEquals,
    #[error("unterminated quoted value of {0}")]
    UnterminatedQuote(String),
    #[error("unknown connection parameter {0:?}")]
    UnknownParameter(String),
    #[error("connection parameter {key} is not supported: {reason}")]
    Unsupported { key: String, reason: &'static str },
    #[error("sslrootcert=system needs sslmode=verify-full")]
    SystemRootsNeedVerifyFull,
    #[error("invalid {key} {value:?}: expected {expected}")]
    InvalidValue {
        key: &'static str,
        value: String,
        expected: &'static str,
    },
}

impl DatabaseUrl {
    /// Parses a connection string; see the module documentation.
    pub fn parse(text: &str) -> Result<DatabaseUrl, DatabaseUrlError> {
        parse(text)
    }
}

fn parse(text: &str) -> Result<DatabaseUrl, DatabaseUrlError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(DatabaseUrlError::Empty);
    }
    let mut parameters = Parameters::default();
    if let Some(rest) = ["postgresql://", "postgres://"]
        .iter()
        .find_map(|scheme| text.strip_prefix(scheme))
    {
        parse_url(rest, &mut parameters)?;
    } else if let Some(scheme) = url_scheme(text) {
        return Err(DatabaseUrlError::Scheme(scheme.to_string()));
    } else if text.contains('=') {
        parse_keyword_value(text, &mut parameters)?;
    } else {
        return Err(DatabaseUrlError::Unrecognized);
    }
    parameters.finish()
}

impl DatabaseUrl {
    /// The connection as a URL with the password shown as `••••`, for logs and pages.
    pub fn masked(&self) -> String {
        let mut url = format!("postgres://{}", percent_encode(&self.user));
        if self.password.is_some() {
            url.push(':');
            url.push_str(MASK);
        }
        url.push('@');
        let mut query = Vec::new();
        match &self.host {
            // Only the colons of an IPv6 address may stay as they are inside the
            // brackets: a `/`, `]` or `?` would end the host early when read back.
            Host::Tcp(host) if host.contains(':') => {
                url.push_str(&format!("[{}]", percent_encode(host).replace("%3A", ":")));
            }
            Host::Tcp(host) => url.push_str(&percent_encode(host)),
            Host::Unix(directory) => query.push(("host", directory.display().to_string())),
        }
        url.push_str(&format!(":{}/{}", self.port, percent_encode(&self.dbname)));
        if self.sslmode != SslMode::Prefer {
            query.push(("sslmode", self.sslmode.as_str().to_string()));
        }
        if let Some(path) = &self.sslrootcert {
            query.push(("sslrootcert", path.display().to_string()));
        }
        if let Some(name) = &self.application_name {
            query.push(("application_name", name.clone()));
        }
        if let Some(timeout) = self.connect_timeout {
            query.push(("connect_timeout", timeout.as_secs().to_string()));
        }
        for (index, (key, value)) in query.iter().enumerate() {
            url.push(if index == 0 { '?' } else { '&' });
            url.push_str(&format!("{key}={}", percent_encode(value)));
        }
        url
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("DatabaseUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| MASK))
            .field("dbname", &self.dbname)
            .field("sslmode", &self.sslmode)
            .field("sslrootcert", &self.sslrootcert)
            .field("application_name", &self.application_name)
            .field("connect_timeout", &self.connect_timeout)
            .finish()
    }
}

/// Percent-encodes a URL part for display; `form_urlencoded` writes a space as `+`, which
/// in a URL's user, host or path would be taken literally, so spaces become `%20`.
fn percent_encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fuzz;
