//! `rowhook demo --database-url URL`: a database of the demo's own on a server the user
//! already runs, dropped afterwards with the demo's replication slot.

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use rowhook::change::quote_identifier;
use rowhook::postgres;
use rowhook::postgres::DatabaseUrl;
use tokio_postgres::error::SqlState;

use crate::cli::Failure;

/// How long dropping waits for sessions of the stopped service to go away.
const IN_USE_WAIT: Duration = Duration::from_secs(15);

#[derive(Clone, Debug)]
pub(crate) struct ExternalDatabase {
    server: DatabaseUrl,
    /// Also the name of the demo's slot and publication.
    pub name: String,
    /// The demo database: the given URL with `dbname` replaced.
    pub url: String,
}

impl ExternalDatabase {
    /// Checks the URL (a usage error when it does not parse); creates nothing.
    pub(crate) fn new(server_url: &str, name: &str) -> Result<ExternalDatabase, Failure> {
        let invalid = |error: rowhook::postgres::DatabaseUrlError| {
            Failure::Configuration(vec![format!("error: --database-url: {error}")])
        };
        let server = DatabaseUrl::parse(server_url).map_err(invalid)?;
        let url = url_with_database(server_url, name);
        let parsed = DatabaseUrl::parse(&url).map_err(invalid)?;
        if parsed.dbname != name {
            return Err(Failure::Configuration(vec![format!(
                "error: --database-url: cannot point it at database {name:?}"
            )]));
        }
        Ok(ExternalDatabase {
            server,
            name: name.to_string(),
            url,
        })
    }

    /// Where the server is, for the story (no password).
    pub(crate) fn server_address(&self) -> String {
        postgres::display_address(&self.server)
    }

    /// Checks that the server can do logical replication, then creates the database.
    pub(crate) async fn create(&self) -> anyhow::Result<()> {
        let client = postgres::connect(&self.server).await?;
        let wal_level: String = client
            .query_one("SHOW wal_level", &[])
            .await
            .map_err(|error| anyhow!("{}", postgres::describe(&error)))?
            .get(0);
        if wal_level != "logical" {
            bail!(
                "the server at {} has wal_level = {wal_level}; rowhook needs wal_level = \
                 logical (set it in postgresql.conf and restart PostgreSQL), or run the demo \
                 without --database-url",
                self.server_address()
            );
        }
        client
            .batch_execute(&format!("CREATE DATABASE {}", quote_identifier(&self.name)))
            .await
            .map_err(|error| anyhow!("{}", postgres::describe(&error)))
            .with_context(|| format!("cannot create database {}", self.name))
    }

    /// Drops the demo's slot (it would pin WAL on the whole server, and a database with
    /// a slot cannot be dropped), then the database with its tables and publication.
    pub(crate) async fn drop_all(&self) -> anyhow::Result<()> {
        let client = postgres::connect(&self.server).await?;
        let drop_slot = format!(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots \
             WHERE slot_name = '{}'",
            self.name
        );
        let drop_database = format!("DROP DATABASE IF EXISTS {}", quote_identifier(&self.name));
        for statement in [drop_slot, drop_database] {
            // The stopped service's sessions may take a moment to end on the server.
            let started = tokio::time::Instant::now();
            loop {
                match client.batch_execute(&statement).await {
                    Ok(()) => break,
                    Err(error)
                        if error.code() == Some(&SqlState::OBJECT_IN_USE)
                            && started.elapsed() < IN_USE_WAIT =>
                    {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    Err(error) => {
                        return Err(anyhow!("{}", postgres::describe(&error)))
                            .with_context(|| format!("cannot run {statement}"));
                    }
                }
            }
        }
        Ok(())
    }
}

/// `url` pointing at `database` instead: libpq lets a later `dbname` override an
/// earlier one, as a query parameter of a URL or as another key=value pair.
pub(crate) fn url_with_database(url: &str, database: &str) -> String {
    let url = url.trim();
    let is_url = ["postgres://", "postgresql://"]
        .iter()
        .any(|scheme| url.starts_with(scheme));
    if !is_url {
        return format!("{url} dbname={database}");
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}dbname={database}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_is_replaced_in_every_form() {
        for url in [
            "postgres://me:pw@db.example:5433/app",
            "postgresql://me@db.example/app?sslmode=disable",
            "postgres://localhost",
            "host=/run/postgresql user=me dbname=app",
            "host=db.example",
        ] {
            let replaced = url_with_database(url, "rowhook_demo_7");
            let parsed = DatabaseUrl::parse(&replaced).unwrap();
            let original = DatabaseUrl::parse(url).unwrap();
            assert_eq!(parsed.dbname, "rowhook_demo_7", "{replaced}");
            assert_eq!(parsed.host, original.host, "{replaced}");
            assert_eq!(parsed.user, original.user, "{replaced}");
            assert_eq!(parsed.password, original.password, "{replaced}");
            assert_eq!(parsed.sslmode, original.sslmode, "{replaced}");
        }
    }

    #[test]
    fn a_url_that_does_not_parse_is_a_usage_error() {
        assert!(matches!(
            ExternalDatabase::new("mysql://nope", "rowhook_demo_1"),
            Err(Failure::Configuration(_))
        ));
        let database = ExternalDatabase::new("postgres://me@127.0.0.1:5433/app", "rowhook_demo_1")
            .ok()
            .unwrap();
        assert_eq!(database.server_address(), "127.0.0.1:5433");
        assert!(database.url.ends_with("?dbname=rowhook_demo_1"));
    }
}
