//! Ordinary SQL connections (tokio-postgres) for setup, checks and notify mode, with the
//! same URL and TLS rules as the replication connection. rowhook opens the socket itself
//! (tokio-postgres's `connect_raw`) so that every connection is watched for a peer that
//! stops answering (see `liveness`).

use std::time::Duration;

use std::task::Poll;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_postgres::config::SslMode as ClientSslMode;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres::{AsyncMessage, Connection, Notification};
use tracing::{debug, warn};

use crate::postgres::liveness::{ANSWER_TIMEOUT, Watched};
use crate::postgres::tls::{self, TlsError};
use crate::postgres::transport::{SocketError, open_socket};
use crate::postgres::{DatabaseUrl, Host, SslMode};

#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error("cannot connect to {address}: {message}")]
    Connect {
        address: String,
        message: String,
        #[source]
        source: tokio_postgres::Error,
    },
    #[error(transparent)]
    Socket(#[from] SocketError),
    #[error("invalid host name {0:?} for TLS")]
    ServerName(String),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// The address shown in messages: never includes the password.
pub fn display_address(url: &DatabaseUrl) -> String {
    match &url.host {
        Host::Tcp(host) => format!("{host}:{}", url.port),
        Host::Unix(directory) => format!("{}/.s.PGSQL.{}", directory.display(), url.port),
    }
}

/// A tokio-postgres error in full: its own text hides the server's message behind
/// "db error", so take the server's fields when there are any.
pub fn describe(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(server) => {
            let mut text = format!("{} (SQLSTATE {})", server.message(), server.code().code());
            if let Some(detail) = server.detail() {
                text.push_str("; ");
                text.push_str(detail);
            }
            if let Some(hint) = server.hint() {
                text.push_str("; hint: ");
                text.push_str(hint);
            }
            text
        }
        None => match std::error::Error::source(error) {
            Some(source) => format!("{error}: {source}"),
            None => error.to_string(),
        },
    }
}

/// Connects and spawns the connection's driver task. A peer that owes an answer for
/// [`ANSWER_TIMEOUT`] is taken for dead and the connection closed.
pub async fn connect(url: &DatabaseUrl) -> Result<tokio_postgres::Client, DatabaseError> {
    connect_with(url, None, ANSWER_TIMEOUT).await
}

/// Connects like `connect`, for queries that may legitimately run up to `limit` (a pool
/// with a `statement_timeout`, setup's DDL waiting for a lock).
pub async fn connect_answering_within(
    url: &DatabaseUrl,
    limit: Duration,
) -> Result<tokio_postgres::Client, DatabaseError> {
    connect_with(url, None, limit).await
}

/// Connects like `connect` and hands on every `NOTIFY` the session receives (after it
/// LISTENs). The receiver ends when the connection does.
pub async fn connect_listening(
    url: &DatabaseUrl,
) -> Result<
    (
        tokio_postgres::Client,
        mpsc::UnboundedReceiver<Notification>,
    ),
    DatabaseError,
> {
    let (sender, receiver) = mpsc::unbounded_channel();
    let client = connect_with(url, Some(sender), ANSWER_TIMEOUT).await?;
    Ok((client, receiver))
}

async fn connect_with(
    url: &DatabaseUrl,
    notifications: Option<mpsc::UnboundedSender<Notification>>,
    answer_limit: Duration,
) -> Result<tokio_postgres::Client, DatabaseError> {
    let mut config = tokio_postgres::Config::new();
    config
        .user(&url.user)
        .dbname(&url.dbname)
        .application_name(url.application_name.as_deref().unwrap_or("rowhook"));
    if let Some(password) = &url.password {
        config.password(password);
    }
    let address = display_address(url);
    let connect_error = |source: tokio_postgres::Error| DatabaseError::Connect {
        address: address.clone(),
        message: describe(&source),
        source,
    };
    let tls_config = match &url.host {
        Host::Unix(_) => None,
        Host::Tcp(_) => tls::client_config(url.sslmode, url.sslrootcert.as_deref())?,
    };
    let socket = Watched::new(open_socket(url).await?, answer_limit);
    // Startup and authentication wait on the peer as well: the connect timeout bounds them.
    let timeout = url.connect_timeout.unwrap_or(Duration::from_secs(10));
    let timed_out = |_| {
        DatabaseError::Socket(SocketError::Timeout {
            address: address.clone(),
            seconds: timeout.as_secs(),
        })
    };
    let client = match tls_config {
        None => {
            config.ssl_mode(ClientSslMode::Disable);
            let (client, connection) =
                tokio::time::timeout(timeout, config.connect_raw(socket, tokio_postgres::NoTls))
                    .await
                    .map_err(timed_out)?
                    .map_err(connect_error)?;
            tokio::spawn(drive(connection, notifications));
            client
        }
        Some(tls_config) => {
            config.ssl_mode(match url.sslmode {
                SslMode::Prefer => ClientSslMode::Prefer,
                _ => ClientSslMode::Require,
            });
            let mut connector =
                tokio_postgres_rustls::MakeRustlsConnect::new((*tls_config).clone());
            let host = match &url.host {
                Host::Tcp(host) => host.trim_matches(['[', ']']),
                Host::Unix(_) => "localhost",
            };
            let tls = MakeTlsConnect::<Watched<crate::postgres::Transport>>::make_tls_connect(
                &mut connector,
                host,
            )
            .map_err(|_| DatabaseError::ServerName(host.to_string()))?;
            let (client, connection) =
                tokio::time::timeout(timeout, config.connect_raw(socket, tls))
                    .await
                    .map_err(timed_out)?
                    .map_err(connect_error)?;
            tokio::spawn(drive(connection, notifications));
            client
        }
    };
    Ok(client)
}

/// Runs a connection until it closes, passing notifications on when asked to.
async fn drive<S, T>(
    mut connection: Connection<S, T>,
    notifications: Option<mpsc::UnboundedSender<Notification>>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
    T: AsyncRead + AsyncWrite + Unpin,
{
    let ended = std::future::poll_fn(|context| {
        loop {
            match std::task::ready!(connection.poll_message(context)) {
                Some(Ok(AsyncMessage::Notification(notification))) => {
                    if let Some(notifications) = &notifications {
                        // A receiver that went away only means nobody listens any more.
                        let _ = notifications.send(notification);
                    }
                }
                // Notices (e.g. "schema already exists, skipping") carry nothing we need.
                Some(Ok(_)) => {}
                Some(Err(error)) => return Poll::Ready(Err(error)),
                None => return Poll::Ready(Ok(())),
            }
        }
    })
    .await;
    if let Err(error) = ended {
        // Said louder when rowhook gave the peer up: whoever used the connection only
        // hears "connection closed".
        let given_up = std::error::Error::source(&error)
            .and_then(|source| source.downcast_ref::<std::io::Error>())
            .is_some_and(|source| source.kind() == std::io::ErrorKind::TimedOut);
        if given_up {
            warn!(error = %describe(&error), "database connection given up");
        } else {
            debug!(%error, "database connection closed");
        }
    }
}
