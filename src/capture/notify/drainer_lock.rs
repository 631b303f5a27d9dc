//! The drainer's lock: one session at a time drains (and deletes from) the outbox, and a
//! session of this instance given up as dead is made to let go of it.

use std::time::Duration;

use tokio_postgres::Client;
use tracing::warn;

use super::error::{NotifyError, query_error};

/// `pg_try_advisory_lock` key of the drainer: "rowhook" in ASCII.
const DRAINER_LOCK: i64 = 0x0072_6f77_686f_6f6b;

/// Takes the drainer's lock for the session of `client`. `last_backend` is the server
/// process of this instance's previous session, if any, and becomes this session's: a
/// previous session still holding the lock is ended first. `NotifyError::Busy` when the
/// lock is held by anyone else (another instance draining).
pub(super) async fn take_drainer_lock(
    client: &Client,
    last_backend: &mut Option<i32>,
) -> Result<(), NotifyError> {
    let row = client
        .query_one(
            "SELECT pg_try_advisory_lock($1), pg_backend_pid()",
            &[&DRAINER_LOCK],
        )
        .await
        .map_err(query_error("locking the outbox"))?;
    let abandoned = last_backend.replace(row.get(1));
    let mut locked: bool = row.get(0);
    if !locked && let Some(abandoned) = abandoned {
        locked = take_lock_from_abandoned(client, abandoned).await?;
    }
    if locked {
        Ok(())
    } else {
        Err(NotifyError::Busy)
    }
}

/// Ends this instance's previous session if it still holds the drainer's lock — one
/// given up as dead that the server has not noticed (behind a proxy that keeps accepting
/// bytes it never would) — and takes the lock once the process has ended. A role may end
/// its own sessions; a lock held by anyone else is left alone.
async fn take_lock_from_abandoned(client: &Client, abandoned: i32) -> Result<bool, NotifyError> {
    let ended = client
        .query(
            // The drainer's lock itself (a bigint key shows as its two halves), so that a
            // reused process id holding some other advisory lock is never ended.
            "SELECT pg_terminate_backend(pid) FROM pg_locks \
             WHERE locktype = 'advisory' AND granted AND pid = $1 \
             AND classid::bigint = $2::bigint >> 32 \
             AND objid::bigint = $2::bigint & 4294967295 AND objsubid = 1",
            &[&abandoned, &DRAINER_LOCK],
        )
        .await
        .map_err(query_error("ending the previous session"))?;
    if ended.is_empty() {
        return Ok(false);
    }
    warn!(
        pid = abandoned,
        "ended this instance's previous outbox session, which still held the drainer's lock"
    );
    for _ in 0..50 {
        let locked: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&DRAINER_LOCK])
            .await
            .map_err(query_error("locking the outbox"))?
            .get(0);
        if locked {
            return Ok(true);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(false)
}
