//! Either capture mode behind one call, so that `run` and `tail` build a source and start
//! it without caring which mode the configuration chose.

use tokio::sync::mpsc;

use super::notify::{NotifyError, NotifySource};
use super::replication::{CaptureError, ReplicationSource};
use super::stage::{Acknowledgements, Captured};
use crate::shutdown::Shutdown;

pub enum Source {
    Replication(ReplicationSource),
    Notify(NotifySource),
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("replication failed")]
    Replication(#[from] CaptureError),
    #[error("notify capture failed")]
    Notify(#[from] NotifyError),
}

impl Source {
    /// Captures until shutdown, until the next stage goes away, or until a failure an
    /// operator must fix.
    pub async fn run(
        self,
        output: mpsc::Sender<Captured>,
        acknowledgements: Acknowledgements,
        shutdown: Shutdown,
    ) -> Result<(), SourceError> {
        match self {
            Source::Replication(source) => {
                Ok(source.run(output, acknowledgements, shutdown).await?)
            }
            Source::Notify(source) => Ok(source.run(output, acknowledgements, shutdown).await?),
        }
    }
}
