//! `rowhook receive [--listen ADDR] [--secret whsec_…] [--status CODE]`: a local
//! receiver for trying webhooks. Prints every request to stdout, verifies signatures
//! when given a secret, answers every request with one status. Needs no configuration.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, anyhow};
use axum::http::StatusCode;
use rowhook::receive::{self, Receipt, Receiver};
use rowhook::signature;
use tokio::sync::mpsc;

use super::{Failure, shutdown_on_signals};

pub(crate) async fn run(
    listen: SocketAddr,
    secret: Option<String>,
    status: u16,
) -> Result<(), Failure> {
    if let Some(secret) = &secret
        && let Err(error) = signature::check_secret(secret)
    {
        return Err(Failure::Configuration(vec![format!(
            "error: --secret: {error}"
        )]));
    }
    let status = StatusCode::from_u16(status).map_err(|_| {
        Failure::Configuration(vec![format!(
            "error: --status: {status} is not an HTTP status code"
        )])
    })?;
    let listener = receive::listen(listen).await.map_err(anyhow::Error::from)?;
    let address = listener
        .local_addr()
        .context("cannot read the listening address")?;
    let verifying = if secret.is_some() {
        "verifying signatures"
    } else {
        "not verifying signatures (no --secret)"
    };
    eprintln!(
        "rowhook receive: listening on http://{address}/, answering {}, {verifying}; \
         Ctrl-C stops",
        status.as_u16()
    );

    let (receipts, mut arrived) = mpsc::unbounded_channel();
    let receiver = Receiver {
        secret,
        answer: Arc::new(move |_| status),
        receipts,
    };
    let (_trigger, shutdown) = shutdown_on_signals();
    let mut server = tokio::spawn(receive::serve(listener, receiver, shutdown));
    // Not "until the channel closes": a connection cut off at shutdown may still hold it.
    let served = loop {
        tokio::select! {
            Some(receipt) = arrived.recv() => print(&receipt),
            finished = &mut server => break finished,
        }
    };
    while let Ok(receipt) = arrived.try_recv() {
        print(&receipt);
    }
    served
        .map_err(|error| anyhow!("the receiver task failed: {error}"))?
        .map_err(anyhow::Error::from)?;
    Ok(())
}

fn print(receipt: &Receipt) {
    let mut stdout = std::io::stdout().lock();
    // A closed stdout (the reader went away) ends printing, not the receiver.
    let _ = stdout
        .write_all(receive::render(receipt).as_bytes())
        .and_then(|()| stdout.flush());
}
