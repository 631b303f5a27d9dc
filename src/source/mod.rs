//! Capture: reading committed row changes out of PostgreSQL.

pub mod catalog;
pub mod database;
pub mod database_url;
pub mod finding;
pub mod replication;
mod tls;
pub mod value;
