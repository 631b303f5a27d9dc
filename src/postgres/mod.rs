//! PostgreSQL as any client meets it: the connection string, TLS, ordinary connections
//! the catalog queries `check` and `setup` make, and the shapes of user-defined types. Capture's replication connection is
//! built on the same URL and TLS settings.

pub(crate) mod catalog;
mod connection;
mod liveness;
mod tls;
mod transport;
mod types;
mod url;

pub use connection::{
    DatabaseError, connect, connect_answering_within, connect_listening, describe, display_address,
};
pub(crate) use liveness::SERVER_SIDE_KEEPALIVE_OPTIONS;
pub use liveness::{ANSWER_MARGIN, ANSWER_TIMEOUT, SERVER_SIDE_LIVENESS};
pub(crate) use liveness::{Watched, silent_peer};
pub use tls::TlsError;
pub(crate) use tls::client_config;
pub use transport::SocketError;
pub(crate) use transport::{Transport, open_socket};
pub(crate) use types::{FIRST_USER_OID, TypeShape, type_shapes};
pub use url::{DatabaseUrl, DatabaseUrlError, Host, SslMode};
