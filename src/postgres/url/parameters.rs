//! Connection parameters as they are collected from either syntax, and resolved into a
//! [`DatabaseUrl`] once all are known.

use std::path::PathBuf;
use std::time::Duration;

use super::{
    DEFAULT_HOST, DEFAULT_PORT, DEFAULT_USER, DatabaseUrl, DatabaseUrlError, Host, SslMode,
};

/// Collected values, resolved into a [`DatabaseUrl`] once all are known, because a
/// later parameter overrides an earlier one (`?port=` wins over `host:port`).
#[derive(Default)]
pub(super) struct Parameters {
    pub(super) host: Option<String>,
    pub(super) port: Option<String>,
    pub(super) user: Option<String>,
    pub(super) password: Option<String>,
    pub(super) dbname: Option<String>,
    pub(super) sslmode: Option<SslMode>,
    pub(super) sslrootcert: Option<PathBuf>,
    /// `sslrootcert=system` (libpq 16): the system's trusted roots, and verify-full.
    pub(super) system_roots: bool,
    pub(super) application_name: Option<String>,
    pub(super) fallback_application_name: Option<String>,
    pub(super) connect_timeout: Option<Duration>,
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
    pub(super) fn apply(&mut self, key: &str, value: String) -> Result<(), DatabaseUrlError> {
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

    pub(super) fn finish(self) -> Result<DatabaseUrl, DatabaseUrlError> {
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
