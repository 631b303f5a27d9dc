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

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use thiserror::Error;

/// What a password or other secret is shown as.
pub const MASK: &str = "••••";

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

/// Parses a connection string; see the module documentation.
pub fn parse(text: &str) -> Result<DatabaseUrl, DatabaseUrlError> {
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
            Host::Tcp(host) if host.contains(':') => {
                url.push_str(&format!("[{}]", host.replace('%', "%25")));
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

/// Collected values, resolved into a [`DatabaseUrl`] once all are known, because a
/// later parameter overrides an earlier one (`?port=` wins over `host:port`).
#[derive(Default)]
struct Parameters {
    host: Option<String>,
    port: Option<String>,
    user: Option<String>,
    password: Option<String>,
    dbname: Option<String>,
    sslmode: Option<SslMode>,
    sslrootcert: Option<PathBuf>,
    /// `sslrootcert=system` (libpq 16): the system's trusted roots, and verify-full.
    system_roots: bool,
    application_name: Option<String>,
    fallback_application_name: Option<String>,
    connect_timeout: Option<Duration>,
}

/// Known to libpq, and safe to leave out for a single-host connection made by rowhook
/// (which sets `replication` itself).
const IGNORED: [&str; 10] = [
    "target_session_attrs",
    "load_balance_hosts",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "tcp_user_timeout",
    "sslcompression",
    "sslsni",
    "replication",
];

impl Parameters {
    fn apply(&mut self, key: &str, value: String) -> Result<(), DatabaseUrlError> {
        let unsupported = |reason| {
            Err(DatabaseUrlError::Unsupported {
                key: key.to_string(),
                reason,
            })
        };
        let invalid = |key, value: &str, expected| DatabaseUrlError::InvalidValue {
            key,
            value: value.to_string(),
            expected,
        };
        match key {
            "host" => self.host = Some(value),
            "port" => self.port = Some(value),
            "user" => self.user = Some(value),
            "password" => self.password = Some(value),
            "dbname" => self.dbname = Some(value),
            "sslmode" => {
                self.sslmode = Some(match value.as_str() {
                    "disable" => SslMode::Disable,
                    "prefer" => SslMode::Prefer,
                    "require" => SslMode::Require,
                    "verify-ca" => SslMode::VerifyCa,
                    "verify-full" => SslMode::VerifyFull,
                    "allow" => return unsupported("use disable or prefer"),
                    other => {
                        return Err(invalid(
                            "sslmode",
                            other,
                            "disable, prefer, require, verify-ca or verify-full",
                        ));
                    }
                });
            }
            "sslrootcert" => {
                self.system_roots = value == "system";
                self.sslrootcert = Some(PathBuf::from(value)).filter(|_| !self.system_roots);
            }
            "application_name" => self.application_name = Some(value),
            "fallback_application_name" => self.fallback_application_name = Some(value),
            "connect_timeout" => {
                // libpq: zero or negative waits forever; 1 is taken as its minimum, 2.
                let seconds: i64 = value
                    .trim()
                    .parse()
                    .map_err(|_| invalid("connect_timeout", &value, "a number of seconds"))?;
                self.connect_timeout = u64::try_from(seconds)
                    .ok()
                    .filter(|seconds| *seconds > 0)
                    .map(|seconds| Duration::from_secs(seconds.max(2)));
            }
            "client_encoding" => {
                let encoding = value.to_ascii_uppercase().replace('-', "");
                if !matches!(encoding.as_str(), "UTF8" | "UNICODE" | "AUTO") {
                    return unsupported("rowhook always uses UTF8");
                }
            }
            "channel_binding" => check_optional_feature("channel_binding", &value)?,
            "gssencmode" => check_optional_feature("gssencmode", &value)?,
            "sslnegotiation" if value == "postgres" => {}
            "ssl_min_protocol_version" if ["TLSv1", "TLSv1.1", "TLSv1.2"].contains(&&*value) => {}
            "ssl_max_protocol_version" if ["TLSv1.2", "TLSv1.3"].contains(&&*value) => {}
            "sslnegotiation" | "ssl_min_protocol_version" | "ssl_max_protocol_version" => {
                return unsupported("TLS 1.2 and 1.3 are used with the standard negotiation");
            }
            "options" => return unsupported("server options are not passed on"),
            "passfile" | "service" => {
                return unsupported(
                    "no password or service file is read: put the value in the URL",
                );
            }
            "sslcert" | "sslkey" | "sslpassword" | "sslcertmode" | "sslcrl" | "sslcrldir" => {
                return unsupported("client certificates and revocation lists are not supported");
            }
            "hostaddr" => return unsupported("give the address as host"),
            "krbsrvname" | "gsslib" | "gssdelegation" | "require_auth" | "requirepeer" => {
                return unsupported("it cannot be enforced by rowhook");
            }
            ignored if IGNORED.contains(&ignored) => {}
            unknown => return Err(DatabaseUrlError::UnknownParameter(unknown.to_string())),
        }
        Ok(())
    }

    fn finish(self) -> Result<DatabaseUrl, DatabaseUrlError> {
        let host = match self.host.as_deref() {
            None | Some("") => Host::Tcp(DEFAULT_HOST.to_string()),
            Some(host) if host.contains(',') => return Err(DatabaseUrlError::MultipleHosts),
            Some(directory) if directory.starts_with('/') => Host::Unix(PathBuf::from(directory)),
            Some(host) => Host::Tcp(host.to_string()),
        };
        let port = match self.port.as_deref() {
            None | Some("") => DEFAULT_PORT,
            Some(port) if port.contains(',') => return Err(DatabaseUrlError::MultipleHosts),
            Some(port) => port
                .parse::<u16>()
                .ok()
                .filter(|port| *port > 0)
                .ok_or(DatabaseUrlError::Port)?,
        };
        let sslmode = match (self.sslmode, self.system_roots) {
            (None | Some(SslMode::VerifyFull), true) => SslMode::VerifyFull,
            (Some(_), true) => return Err(DatabaseUrlError::SystemRootsNeedVerifyFull),
            (sslmode, false) => sslmode.unwrap_or(SslMode::Prefer),
        };
        let user = self
            .user
            .filter(|user| !user.is_empty())
            .unwrap_or_else(|| DEFAULT_USER.to_string());
        Ok(DatabaseUrl {
            host,
            port,
            dbname: self
                .dbname
                .filter(|dbname| !dbname.is_empty())
                .unwrap_or_else(|| user.clone()),
            user,
            password: self.password,
            sslmode,
            sslrootcert: self.sslrootcert,
            application_name: self.application_name.or(self.fallback_application_name),
            connect_timeout: self.connect_timeout,
        })
    }
}

/// `channel_binding` and `gssencmode`: rowhook uses neither, so only values that do not
/// insist on them are accepted.
fn check_optional_feature(key: &'static str, value: &str) -> Result<(), DatabaseUrlError> {
    match value {
        "disable" | "prefer" => Ok(()),
        "require" => Err(DatabaseUrlError::Unsupported {
            key: key.to_string(),
            reason: "it cannot be required",
        }),
        other => Err(DatabaseUrlError::InvalidValue {
            key,
            value: other.to_string(),
            expected: "disable, prefer or require",
        }),
    }
}

/// The scheme of something that looks like another kind of URL (`mysql://…`).
fn url_scheme(text: &str) -> Option<&str> {
    let (scheme, _) = text.split_once("://")?;
    let mut characters = scheme.chars();
    let is_scheme = characters.next()?.is_ascii_alphabetic()
        && characters
            .all(|character| character.is_ascii_alphanumeric() || "+-.".contains(character));
    is_scheme.then_some(scheme)
}

/// `[user[:password]@][host][:port][/dbname][?key=value&…]`, after the scheme.
fn parse_url(rest: &str, parameters: &mut Parameters) -> Result<(), DatabaseUrlError> {
    let (location, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, path) = location.split_once('/').unwrap_or((location, ""));
    let host_and_port = match authority.rsplit_once('@') {
        Some((user_information, host_and_port)) => {
            let (user, password) = match user_information.split_once(':') {
                Some((user, password)) => (user, Some(password)),
                None => (user_information, None),
            };
            parameters.user = Some(percent_decode(user, "user name")?);
            if let Some(password) = password {
                parameters.password = Some(percent_decode(password, "password")?);
            }
            host_and_port
        }
        None => authority,
    };
    if host_and_port.contains(',') {
        return Err(DatabaseUrlError::MultipleHosts);
    }
    let (host, port) = match host_and_port.strip_prefix('[') {
        Some(bracketed) => {
            let (address, after) = bracketed.split_once(']').ok_or(DatabaseUrlError::Ipv6)?;
            let port = match after {
                "" => None,
                after => Some(after.strip_prefix(':').ok_or(DatabaseUrlError::Port)?),
            };
            (percent_decode(address, "host")?, port)
        }
        None => match host_and_port.rsplit_once(':') {
            Some((host, port)) => (percent_decode(host, "host")?, Some(port)),
            None => (percent_decode(host_and_port, "host")?, None),
        },
    };
    parameters.host = Some(host);
    parameters.port = port.map(str::to_string);
    if !path.is_empty() {
        parameters.dbname = Some(percent_decode(path, "database name")?);
    }
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair
            .split_once('=')
            .ok_or(DatabaseUrlError::MissingEquals)?;
        let key = percent_decode(key, "parameters")?;
        let value = percent_decode(value, "parameters")?;
        parameters.apply(&key, value)?;
    }
    Ok(())
}

/// `key=value` pairs separated by white space; values may be single-quoted, and a
/// backslash escapes the next character, as in libpq.
fn parse_keyword_value(text: &str, parameters: &mut Parameters) -> Result<(), DatabaseUrlError> {
    let mut characters = text.chars().peekable();
    loop {
        skip_white_space(&mut characters);
        if characters.peek().is_none() {
            return Ok(());
        }
        let mut key = String::new();
        while let Some(character) =
            characters.next_if(|character| *character != '=' && !character.is_whitespace())
        {
            key.push(character);
        }
        skip_white_space(&mut characters);
        if characters.next() != Some('=') {
            return Err(DatabaseUrlError::MissingEquals);
        }
        skip_white_space(&mut characters);
        let mut value = String::new();
        if characters.next_if_eq(&'\'').is_some() {
            loop {
                match characters.next() {
                    Some('\'') => break,
                    Some('\\') => match characters.next() {
                        Some(escaped) => value.push(escaped),
                        None => return Err(DatabaseUrlError::UnterminatedQuote(key)),
                    },
                    Some(character) => value.push(character),
                    None => return Err(DatabaseUrlError::UnterminatedQuote(key)),
                }
            }
        } else {
            while let Some(character) = characters.next_if(|character| !character.is_whitespace()) {
                if character == '\\' {
                    value.extend(characters.next());
                } else {
                    value.push(character);
                }
            }
        }
        parameters.apply(&key, value)?;
    }
}

fn skip_white_space(characters: &mut std::iter::Peekable<std::str::Chars>) {
    while characters
        .next_if(|character| character.is_whitespace())
        .is_some()
    {}
}

fn percent_decode(text: &str, part: &'static str) -> Result<String, DatabaseUrlError> {
    let error = || DatabaseUrlError::PercentEncoding(part);
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let digits = bytes.get(index + 1..index + 3).ok_or_else(error)?;
            let value = |digit: u8| char::from(digit).to_digit(16);
            let (Some(high), Some(low)) = (value(digits[0]), value(digits[1])) else {
                return Err(error());
            };
            decoded.push(u8::try_from(high * 16 + low).map_err(|_| error())?);
            index += 3;
        } else {
            decoded.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(decoded).map_err(|_| error())
}

fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// Masks every password in `text`: the `:password@` part of anything URL-like and
/// `password=…` parameters (query or keyword/value form). Never fails; meant for
/// strings of unknown shape, such as error messages that quote a connection string.
pub fn mask_url_password(text: &str) -> String {
    mask_password_parameters(&mask_user_information(text))
}

fn mask_user_information(text: &str) -> String {
    let mut masked = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(separator) = rest.find("://") {
        let authority_start = separator + 3;
        masked.push_str(&rest[..authority_start]);
        rest = &rest[authority_start..];
        let end = rest
            .find(|character: char| character.is_whitespace() || "?#\"'<>".contains(character))
            .unwrap_or(rest.len());
        let region = &rest[..end];
        // The `@` ends the user information; look past a `/` too, because a password
        // with an unencoded `/` must not leak either.
        let slash = region.find('/').unwrap_or(region.len());
        let at = region[..slash].rfind('@').or_else(|| region.rfind('@'));
        if let Some((colon, at)) = at.and_then(|at| region[..at].find(':').map(|colon| (colon, at)))
        {
            masked.push_str(&region[..=colon]);
            masked.push_str(MASK);
            rest = &rest[at..];
        }
    }
    masked.push_str(rest);
    masked
}

fn mask_password_parameters(text: &str) -> String {
    let mut masked = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(found) = find_ascii_case_insensitive(rest, "password") {
        let at_boundary = rest[..found]
            .chars()
            .next_back()
            .is_none_or(|before| before.is_whitespace() || "?&;".contains(before));
        let after_key = &rest[found + "password".len()..];
        let after_equals = after_key
            .trim_start()
            .strip_prefix('=')
            .map(str::trim_start)
            .filter(|_| at_boundary);
        let Some(value) = after_equals else {
            let next = found + "password".len();
            masked.push_str(&rest[..next]);
            rest = &rest[next..];
            continue;
        };
        let value_start = rest.len() - value.len();
        masked.push_str(&rest[..value_start]);
        let value_length = match value.strip_prefix('\'') {
            Some(quoted) => 1 + quoted_length(quoted),
            None => value
                .find(|character: char| character.is_whitespace() || "&#".contains(character))
                .unwrap_or(value.len()),
        };
        if value_length > 0 {
            let quoted = value.starts_with('\'');
            masked.push_str(if quoted { "'" } else { "" });
            masked.push_str(MASK);
            let closed = quoted && value_length >= 2 && value[..value_length].ends_with('\'');
            masked.push_str(if closed { "'" } else { "" });
        }
        rest = &value[value_length..];
    }
    masked.push_str(rest);
    masked
}

/// The length of a single-quoted value after its opening quote, closing quote included
/// (or to the end of the text when it is not closed).
fn quoted_length(quoted: &str) -> usize {
    let mut escaped = false;
    for (index, character) in quoted.char_indices() {
        match character {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '\'' => return index + 1,
            _ => {}
        }
    }
    quoted.len()
}

fn find_ascii_case_insensitive(haystack: &str, needle: &str) -> Option<usize> {
    haystack
        .as_bytes()
        .windows(needle.len())
        .position(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

#[cfg(test)]
#[path = "database_url_tests.rs"]
mod tests;
