//! Noticing a database peer that stopped answering without closing the connection (a
//! firewall that dropped the connection's state, a half-dead VM, a proxy gone silent).
//! TCP alone does not see every such peer: a proxy's kernel keeps acknowledging what it
//! is sent, so neither keepalives nor `TCP_USER_TIMEOUT` ever fire. So every connection
//! to PostgreSQL is [`Watched`]: once rowhook has sent something, the peer owes an
//! answer, and a peer that owes one for too long is taken for dead: reading fails, the
//! connection closes, and whoever used it connects again. The replication stream, where
//! status updates need no answer, asks for one (a keepalive) whenever the server has
//! been quiet (see `capture::replication::stream`).
//!
//! The kernel's help is still asked for, since it needs no traffic of ours: keepalive
//! probes after 10 s of silence, and a write unacknowledged for 30 s ends the connection.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// How long a peer may owe an answer on ordinary connections (setup, checks, notify
/// mode's outbox, the catalog). Pools whose queries have a `statement_timeout` wait that
/// long plus [`ANSWER_MARGIN`], so that the server's own error arrives first.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// What a connection waits beyond a query's `statement_timeout` for the server to say
/// it cancelled the query.
pub const ANSWER_MARGIN: Duration = Duration::from_secs(10);

const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_PROBES: u32 = 3;
const USER_TIMEOUT: Duration = Duration::from_secs(30);

/// The same from the server's side, for sessions that hold something (a lock, a slot, a
/// transaction) another connection may wait for: the server ends a session whose client
/// vanished instead of keeping it for hours, and a transaction left open by a client
/// given up as dead ends too. Every setting may be changed by any role.
pub const SERVER_SIDE_LIVENESS: &str = "SET tcp_keepalives_idle = 10; \
    SET tcp_keepalives_interval = 5; SET tcp_keepalives_count = 3; \
    SET tcp_user_timeout = 30000; SET idle_in_transaction_session_timeout = 60000;";
/// The keepalive part, as startup options (the replication protocol runs no `SET`).
pub(crate) const SERVER_SIDE_KEEPALIVE_OPTIONS: &str = "-c tcp_keepalives_idle=10 \
    -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3 -c tcp_user_timeout=30000";

/// Keepalive probes and a user timeout on a TCP socket to PostgreSQL.
pub(crate) fn configure_socket(stream: &TcpStream) -> io::Result<()> {
    let socket = socket2::SockRef::from(stream);
    let keepalive = socket2::TcpKeepalive::new()
        .with_time(KEEPALIVE_IDLE)
        .with_interval(KEEPALIVE_INTERVAL)
        .with_retries(KEEPALIVE_PROBES);
    socket.set_tcp_keepalive(&keepalive)?;
    socket.set_tcp_user_timeout(Some(USER_TIMEOUT))
}

/// A byte stream whose reads fail once the peer has owed an answer for `limit`: from the
/// first write after the last byte received until the next byte received.
pub(crate) struct Watched<S> {
    inner: S,
    limit: Duration,
    /// Set while an answer is owed; fires when it has been owed too long.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<S> Watched<S> {
    pub(crate) fn new(inner: S, limit: Duration) -> Watched<S> {
        Watched {
            inner,
            limit,
            deadline: None,
        }
    }

    /// Whether the peer has owed an answer for longer than the limit (registering the
    /// task to be woken when it will have).
    fn expired(&mut self, context: &mut Context<'_>) -> bool {
        match &mut self.deadline {
            Some(deadline) => deadline.as_mut().poll(context).is_ready(),
            None => false,
        }
    }
}

/// The error a read returns for a peer taken for dead.
pub(crate) fn silent_peer(limit: Duration) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!(
            "the database did not answer for {} s; taking the connection for dead",
            limit.as_secs()
        ),
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buffer.filled().len();
        // What arrived counts before the deadline does: data that waited in the socket
        // while rowhook was busy elsewhere is an answer, however late it is read.
        match Pin::new(&mut this.inner).poll_read(context, buffer) {
            Poll::Ready(result) => {
                if buffer.filled().len() > before {
                    this.deadline = None;
                }
                Poll::Ready(result)
            }
            Poll::Pending if this.expired(context) => Poll::Ready(Err(silent_peer(this.limit))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.inner).poll_write(context, buffer);
        match written {
            Poll::Ready(Ok(count)) if count > 0 && this.deadline.is_none() => {
                this.deadline = Some(Box::pin(tokio::time::sleep_until(
                    Instant::now() + this.limit,
                )));
                // Polled now, so that it wakes this task when it fires: a driver that read
                // before it wrote (tokio-postgres does) may not read again until woken.
                let _ = this.expired(context);
            }
            // A peer that stopped reading fills the socket's buffers: a write that cannot
            // go out is as owed as an answer (shutdown's last status update included).
            Poll::Pending if this.expired(context) => {
                return Poll::Ready(Err(silent_peer(this.limit)));
            }
            _ => {}
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(context) {
            Poll::Pending if this.expired(context) => Poll::Ready(Err(silent_peer(this.limit))),
            flushed => flushed,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(context)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    use super::*;

    const LIMIT: Duration = Duration::from_secs(30);

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_owes_an_answer_too_long_is_taken_for_dead() {
        let (ours, _peer) = duplex(1024);
        let mut watched = Watched::new(ours, LIMIT);
        watched.write_all(b"query").await.unwrap();
        let started = Instant::now();
        let error = watched.read_u8().await.expect_err("no answer");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), LIMIT);
        assert!(
            error.to_string().contains("did not answer for 30 s"),
            "{error}"
        );
    }

    /// The order tokio-postgres's connection driver polls in: read (nothing yet), then
    /// write the query, then wait to be woken. The deadline must wake it.
    #[tokio::test(start_paused = true)]
    async fn a_driver_that_read_before_it_wrote_is_woken() {
        let (ours, _peer) = duplex(1024);
        let mut watched = Watched::new(ours, LIMIT);
        let started = Instant::now();
        let mut written = false;
        let outcome = std::future::poll_fn(|context| {
            let mut byte = [0; 1];
            let mut buffer = ReadBuf::new(&mut byte);
            if let Poll::Ready(result) = Pin::new(&mut watched).poll_read(context, &mut buffer) {
                return Poll::Ready(result);
            }
            if !written {
                written = true;
                assert!(
                    Pin::new(&mut watched)
                        .poll_write(context, b"query")
                        .is_ready()
                );
            }
            Poll::Pending
        })
        .await;
        assert_eq!(
            outcome.expect_err("taken for dead").kind(),
            io::ErrorKind::TimedOut
        );
        assert_eq!(started.elapsed(), LIMIT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_peer_that_owes_nothing_is_left_alone() {
        let (ours, mut peer) = duplex(1024);
        let mut watched = Watched::new(ours, LIMIT);
        let read = tokio::spawn(async move { watched.read_u8().await });
        tokio::time::sleep(LIMIT * 10).await;
        peer.write_all(b"N").await.unwrap();
        assert_eq!(read.await.unwrap().unwrap(), b'N');
    }

    #[tokio::test(start_paused = true)]
    async fn every_answer_starts_the_wait_again() {
        let (ours, mut peer) = duplex(1024);
        let mut watched = Watched::new(ours, LIMIT);
        for _ in 0..3 {
            watched.write_all(b"ping").await.unwrap();
            tokio::time::sleep(LIMIT - Duration::from_secs(1)).await;
            peer.write_all(b"k").await.unwrap();
            assert_eq!(watched.read_u8().await.unwrap(), b'k');
        }
        // Still owed nothing: a later read waits for as long as it takes.
        let answer = tokio::time::timeout(LIMIT * 2, watched.read_u8()).await;
        assert!(answer.is_err(), "the read is still waiting");
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stopped_reading_fails_the_write() {
        let (ours, _peer) = duplex(16);
        let mut watched = Watched::new(ours, LIMIT);
        let started = Instant::now();
        let error = watched
            .write_all(&[0; 64])
            .await
            .expect_err("the buffer never drains");
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), LIMIT);
    }

    #[tokio::test(start_paused = true)]
    async fn an_answer_that_waited_in_the_socket_counts() {
        let (ours, mut peer) = duplex(1024);
        let mut watched = Watched::new(ours, LIMIT);
        watched.write_all(b"query").await.unwrap();
        peer.write_all(b"answer").await.unwrap();
        // rowhook was busy elsewhere past the deadline; the answer was there all along.
        tokio::time::sleep(LIMIT * 2).await;
        let mut answer = [0; 6];
        watched.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"answer");
    }
}
