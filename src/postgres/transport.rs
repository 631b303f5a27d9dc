//! The byte stream under a connection to PostgreSQL: TCP, a Unix socket, or TLS over
//! TCP (the replication connection does its own TLS; tokio-postgres does it for ordinary
//! connections). Opening one sets the socket options that notice a dead peer.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};
use tokio_rustls::client::TlsStream;

use super::liveness;
use super::{DatabaseUrl, Host};

/// How long connecting may take when the URL does not say (`connect_timeout`).
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("cannot connect to {address}: {source}")]
    Connect {
        address: String,
        #[source]
        source: io::Error,
    },
    #[error("connecting to {address} timed out after {seconds} s")]
    Timeout { address: String, seconds: u64 },
}

/// Connects to the URL's host and port (or Unix socket) within its `connect_timeout`. A
/// TCP socket gets keepalives and a user timeout, so that a peer gone without a word is
/// noticed by the kernel too (see `liveness`).
pub(crate) async fn open_socket(url: &DatabaseUrl) -> Result<Transport, SocketError> {
    let timeout = url.connect_timeout.unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    match &url.host {
        Host::Unix(directory) => {
            let path = directory.join(format!(".s.PGSQL.{}", url.port));
            let address = path.display().to_string();
            let stream = within(address, timeout, UnixStream::connect(&path)).await?;
            Ok(Transport::Unix(stream))
        }
        Host::Tcp(host) => {
            let address = format!("{host}:{}", url.port);
            let target = (host.trim_matches(['[', ']']), url.port);
            let stream = within(address.clone(), timeout, TcpStream::connect(target)).await?;
            stream
                .set_nodelay(true)
                .and_then(|()| liveness::configure_socket(&stream))
                .map_err(|source| SocketError::Connect { address, source })?;
            Ok(Transport::Tcp(stream))
        }
    }
}

async fn within<T>(
    address: String,
    timeout: Duration,
    connect: impl Future<Output = io::Result<T>>,
) -> Result<T, SocketError> {
    match tokio::time::timeout(timeout, connect).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(source)) => Err(SocketError::Connect { address, source }),
        Err(_) => Err(SocketError::Timeout {
            address,
            seconds: timeout.as_secs(),
        }),
    }
}

pub(crate) enum Transport {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(stream) => Pin::new(stream).poll_read(context, buffer),
            Transport::Unix(stream) => Pin::new(stream).poll_read(context, buffer),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_read(context, buffer),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Tcp(stream) => Pin::new(stream).poll_write(context, buffer),
            Transport::Unix(stream) => Pin::new(stream).poll_write(context, buffer),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_write(context, buffer),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(stream) => Pin::new(stream).poll_flush(context),
            Transport::Unix(stream) => Pin::new(stream).poll_flush(context),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(context),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(stream) => Pin::new(stream).poll_shutdown(context),
            Transport::Unix(stream) => Pin::new(stream).poll_shutdown(context),
            Transport::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(context),
        }
    }
}
