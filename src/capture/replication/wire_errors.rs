//! What can go wrong on the replication connection, with what the server said.

use std::io;

use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend;

use crate::postgres::{SocketError, TlsError};

/// An error reported by the server, with the fields an operator needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    pub severity: String,
    pub code: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{} (SQLSTATE {})", self.message, self.code)?;
        if let Some(detail) = &self.detail {
            write!(formatter, "; {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(formatter, "; hint: {hint}")?;
        }
        Ok(())
    }
}

impl ServerError {
    pub(super) fn from_body(body: &backend::ErrorResponseBody) -> ServerError {
        let mut error = ServerError {
            severity: String::from("ERROR"),
            code: String::new(),
            message: String::new(),
            detail: None,
            hint: None,
        };
        let mut fields = body.fields();
        while let Ok(Some(field)) = fields.next() {
            let value = String::from_utf8_lossy(field.value_bytes()).into_owned();
            match field.type_() {
                b'S' => error.severity = value,
                b'C' => error.code = value,
                b'M' => error.message = value,
                b'D' => error.detail = Some(value),
                b'H' => error.hint = Some(value),
                _ => {}
            }
        }
        error
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error(transparent)]
    Socket(#[from] SocketError),
    #[error("the server at {address} does not accept TLS, which sslmode={mode} requires")]
    TlsRefused { address: String, mode: &'static str },
    #[error("TLS handshake with {address} failed: {source}")]
    TlsHandshake {
        address: String,
        #[source]
        source: io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("invalid host name {0:?} for TLS")]
    ServerName(String),
    #[error("server error: {0}")]
    Server(ServerError),
    #[error("the server asks for {0} authentication, which rowhook does not support")]
    UnsupportedAuthentication(&'static str),
    #[error("the server asks for a password, but the connection URL has none")]
    PasswordMissing,
    #[error("SCRAM-SHA-256 authentication failed: {0}")]
    Scram(#[source] io::Error),
    #[error("connection lost: {0}")]
    Io(#[from] io::Error),
    #[error("unexpected message from the server: {0}")]
    Protocol(String),
    #[error("the server closed the connection")]
    Closed,
}

impl ConnectionError {
    /// The SQLSTATE code when the server itself refused.
    pub fn server_code(&self) -> Option<&str> {
        match self {
            ConnectionError::Server(error) => Some(&error.code),
            _ => None,
        }
    }
}
