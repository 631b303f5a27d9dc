//! PostgreSQL as any client meets it: the connection string, TLS, ordinary connections
//! the catalog queries `check` and `setup` make, and the shapes of user-defined types. Capture's replication connection is
//! built on the same URL and TLS settings.

pub(crate) mod catalog;
mod connection;
mod tls;
mod types;
mod url;

pub use connection::{DatabaseError, connect, connect_listening, describe, display_address};
pub use tls::TlsError;
pub(crate) use tls::client_config;
pub(crate) use types::{FIRST_USER_OID, TypeShape, type_shapes};
pub use url::{DatabaseUrl, DatabaseUrlError, Host, SslMode};
