//! What can stop the replication stream, and which of it trying again may cure.

use super::decoder::DecodeError;
use super::frames::FrameError;
use super::wire::ConnectionError;
use crate::capture::reconnect::Transient;
use crate::postgres::{DatabaseError, describe};

/// SQLSTATE of a slot another session streams from.
const OBJECT_IN_USE: &str = "55006";

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error("replication slot {slot:?} does not exist; run `rowhook setup` first")]
    SlotMissing { slot: String },
    #[error("replication slot {slot:?} uses plugin {plugin:?}; rowhook needs pgoutput")]
    WrongPlugin { slot: String, plugin: String },
    #[error("the server sent an unreadable replication frame: {0}")]
    Frame(#[from] FrameError),
    #[error("cannot decode a pgoutput message: {0}")]
    Decode(#[from] DecodeError),
    #[error("the server ended the replication stream")]
    StreamEnded,
    #[error("the server sent an unreadable LSN {0:?}")]
    InvalidLsn(String),
    #[error(transparent)]
    CatalogConnection(#[from] DatabaseError),
    #[error("cannot read column types from the catalog: {}", describe(.0))]
    Catalog(tokio_postgres::Error),
}

impl Transient for CaptureError {
    /// `replication slot "…" is active for PID n`: another instance streams from it.
    fn is_held_elsewhere(&self) -> bool {
        matches!(self, CaptureError::Connection(ConnectionError::Server(server))
            if server.code == OBJECT_IN_USE)
    }

    /// Whether trying again later may succeed: the server restarting or unreachable, the
    /// slot still held by a connection that died a moment ago. Wrong credentials, a
    /// missing slot or publication, or `wal_level` too low need an operator instead.
    fn is_transient(&self) -> bool {
        match self {
            CaptureError::SlotMissing { .. } | CaptureError::WrongPlugin { .. } => false,
            CaptureError::Connection(error) => match error {
                ConnectionError::Server(server) => {
                    let code = server.code.as_str();
                    !(code.starts_with("28")
                        || code.starts_with("3D")
                        || code.starts_with("42")
                        || code == "55000")
                }
                ConnectionError::TlsHandshake { source, .. } => {
                    source.kind() != std::io::ErrorKind::InvalidData
                }
                ConnectionError::Socket(_)
                | ConnectionError::Io(_)
                | ConnectionError::Closed
                | ConnectionError::Protocol(_) => true,
                ConnectionError::TlsRefused { .. }
                | ConnectionError::Tls(_)
                | ConnectionError::ServerName(_)
                | ConnectionError::UnsupportedAuthentication(_)
                | ConnectionError::PasswordMissing
                | ConnectionError::Scram(_) => false,
            },
            // Reading types is an ordinary query on an ordinary connection: whatever fails
            // there fails the same way for the stream and is tried again with it.
            CaptureError::CatalogConnection(_) | CaptureError::Catalog(_) => true,
            CaptureError::Frame(_)
            | CaptureError::Decode(_)
            | CaptureError::StreamEnded
            | CaptureError::InvalidLsn(_) => true,
        }
    }
}
