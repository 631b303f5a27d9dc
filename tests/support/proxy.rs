//! A TCP proxy between rowhook and PostgreSQL that can go silent: every connection open
//! at that moment stops forwarding — it keeps accepting bytes from both sides and drops
//! them, and never closes — as a firewall that lost the connection's state, or a peer
//! that hangs, looks from the outside. Connections made afterwards go through: the path
//! has healed, the old connections are dead.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub(crate) struct Proxy {
    pub port: u16,
    /// Connections numbered below this are silent.
    silent_below: Arc<AtomicU64>,
    next_connection: Arc<AtomicU64>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    /// Listens on a free loopback port and forwards to `upstream_port` on loopback.
    pub(crate) async fn start(upstream_port: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy address").port();
        let silent_below = Arc::new(AtomicU64::new(0));
        let next_connection = Arc::new(AtomicU64::new(0));
        let tasks = Arc::new(Mutex::new(Vec::new()));
        let accepting = {
            let (silent_below, next_connection, tasks) =
                (silent_below.clone(), next_connection.clone(), tasks.clone());
            tokio::spawn(async move {
                while let Ok((client, _)) = listener.accept().await {
                    let Ok(server) = TcpStream::connect(("127.0.0.1", upstream_port)).await else {
                        continue;
                    };
                    let number = next_connection.fetch_add(1, Ordering::SeqCst);
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    let mut tasks = tasks.lock().unwrap();
                    for (from, to) in [(client_read, server_write), (server_read, client_write)] {
                        tasks.push(tokio::spawn(forward(
                            from,
                            to,
                            number,
                            silent_below.clone(),
                        )));
                    }
                }
            })
        };
        tasks.lock().unwrap().push(accepting);
        Proxy {
            port,
            silent_below,
            next_connection,
            tasks,
        }
    }

    /// Every connection open now stops forwarding, for good; new ones still go through.
    pub(crate) fn go_silent(&self) {
        let open = self.next_connection.load(Ordering::SeqCst);
        self.silent_below.store(open, Ordering::SeqCst);
    }

    /// How many connections went through the proxy so far.
    pub(crate) fn connections(&self) -> u64 {
        self.next_connection.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

async fn forward(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    number: u64,
    silent_below: Arc<AtomicU64>,
) {
    let silent = || number < silent_below.load(Ordering::SeqCst);
    let mut buffer = vec![0; 64 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => break,
            Ok(read) => read,
        };
        if !silent() && to.write_all(&buffer[..read]).await.is_err() {
            break;
        }
    }
    if silent() {
        // A silent connection never closes: the other side keeps waiting.
        std::future::pending::<()>().await;
    }
    let _ = to.shutdown().await;
}
