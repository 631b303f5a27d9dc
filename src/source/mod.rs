//! Capture: reading committed row changes out of PostgreSQL.

pub mod capture;
pub mod catalog;
pub mod database;
pub mod database_url;
pub mod finding;
pub mod notify;
pub mod replication;
pub mod setup_error;
pub mod stage;
mod tls;
pub mod value;
