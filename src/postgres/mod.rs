//! PostgreSQL as any client meets it: the connection string, TLS, ordinary connections
//! and the catalog queries `check` and `setup` make. Capture's replication connection is
//! built on the same URL and TLS settings.

pub mod catalog;
pub mod connection;
mod tls;
mod url;

pub use tls::{TlsError, client_config};
pub use url::{DatabaseUrl, DatabaseUrlError, Host, SslMode};
