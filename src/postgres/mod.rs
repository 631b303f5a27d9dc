//! PostgreSQL as any client meets it: the connection string, TLS, ordinary connections
//! and the catalog queries `check` and `setup` make. Capture's replication connection is
//! built on the same URL and TLS settings.

pub(crate) mod catalog;
mod connection;
mod tls;
mod url;

pub use connection::{DatabaseError, connect, connect_listening, describe, display_address};
pub use tls::TlsError;
pub(crate) use tls::client_config;
pub use url::{DatabaseUrl, DatabaseUrlError, Host, SslMode};
