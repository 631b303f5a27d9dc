//! sled 0.34 never gives disk space back: its files keep the size of the largest index it
//! ever held (a backlog of a million events leaves some 70 MiB behind once delivered and
//! pruned). So at open, when sled's files are much larger than what they hold, the index
//! is copied into a fresh sled database — a new *generation* — and the old one deleted.
//!
//! Generation 0 is sled's files directly in the store's directory (as every store was
//! written before compaction existed); generation N ≥ 1 lives in `sled-N/`. The file
//! `sled-generation` names the current one, absent meaning 0. Writing it (a temporary
//! file, synced, renamed over it, the directory synced) is the only moment a compaction
//! takes effect: a crash before leaves the old generation current and the new directory
//! half-written, and the next open deletes it; a crash after leaves the old generation's
//! files, and the next open deletes those. Nothing is copied while anything else writes:
//! the store is not yet open, and `lock` keeps other processes out of the directory for
//! the whole of it. The value log (`values/`) belongs to no generation: the index entries
//! are copied unchanged, so they point at the same values. Once a generation above 0 is
//! current, a directory `db` guards generation 0's place (see [`ROOT_DATABASE`]).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use sled::Db;

use super::backend;
use crate::store::StoreError;

/// The file naming the current generation.
const POINTER: &str = "sled-generation";
const POINTER_TEMPORARY: &str = "sled-generation.new";
/// Held for as long as the store is open, across every generation.
const LOCK: &str = "lock";
/// Generation 0's files: sled's own names, never `values/` or `sled-N/`.
const ROOT_FILES: [&str; 2] = ["conf", "blobs"];
const ROOT_SNAPSHOT_PREFIX: &str = "snap.";
/// Generation 0's database file. Once a later generation is current, a directory of that
/// name stands in its place: a rowhook without generations would otherwise open an empty
/// sled there, see no events, and delete the value log's segments as unused; sled cannot
/// open a directory, so it refuses to start instead.
const ROOT_DATABASE: &str = "db";
const GUARD_NOTE: &str = "This store's sled database is in the directory that \
     sled-generation names: open it with a rowhook that compacts sled into generations.\n";
/// Copied in batches of this many entries, so that memory stays flat.
const COPY_BATCH: usize = 10_000;

/// sled's files are compacted at open once they take more than this many times the bytes
/// of what they hold, and more than the floor: below it a fresh database would hardly be
/// smaller (sled preallocates segments), and every restart would copy.
const WASTE_RATIO: u64 = 4;
#[cfg(not(test))]
const FLOOR_BYTES: u64 = 32 * 1024 * 1024;
#[cfg(test)]
const FLOOR_BYTES: u64 = 4 * 1024 * 1024;

/// Whether sled's files (`on_disk` bytes, holding `live` bytes of keys and values) are
/// worth copying into a fresh database.
pub(super) fn worth_compacting(on_disk: u64, live: u64) -> bool {
    on_disk > FLOOR_BYTES && on_disk > live.saturating_mul(WASTE_RATIO)
}

/// An open sled database and the lock on the store's directory.
pub(super) struct Opened {
    pub(super) db: Db,
    pub(super) lock: File,
}

fn io_error(doing: String) -> impl FnOnce(std::io::Error) -> StoreError {
    move |error| StoreError::backend(doing, error)
}

/// Opens the current generation at `path` with `configure`d sled settings, first
/// finishing or discarding whatever a compaction interrupted left, and compacting into a
/// new generation when sled's files are worth it.
pub(super) fn open(
    path: &Path,
    configure: impl Fn(&Path) -> sled::Config,
    open_error: impl Fn(sled::Error) -> StoreError,
) -> Result<Opened, StoreError> {
    std::fs::create_dir_all(path).map_err(io_error(format!("cannot create {}", path.display())))?;
    let lock = lock(path)?;
    let current = current_generation(path)?;
    if current != 0 && !directory(path, current).is_dir() {
        // sled would make an empty database there, and the value log would then be
        // tidied away as unused.
        return Err(StoreError::corrupt(
            format!("store at {}", path.display()),
            format!("{POINTER} names generation {current}, whose directory is missing"),
        ));
    }
    discard_all_but(path, current)?;
    let db = configure(&directory(path, current))
        .open()
        .map_err(&open_error)?;
    let on_disk = db.size_on_disk().map_err(backend("measuring the store"))?;
    // The floor first: below it, the scan of every entry is not worth making.
    if on_disk <= FLOOR_BYTES || !worth_compacting(on_disk, live_bytes(&db)?) {
        return Ok(Opened { db, lock });
    }
    let next = current + 1;
    let fresh = configure(&directory(path, next))
        .open()
        .map_err(&open_error)?;
    copy(&db, &fresh)?;
    fresh.flush().map_err(backend("compacting the store"))?;
    tracing::info!(
        before = on_disk,
        after = fresh.size_on_disk().unwrap_or(0),
        "sled's files compacted into a fresh database"
    );
    // The fresh database stays open: sled lets go of a closed one's lock only a moment
    // later, and opening it again could fail on its own lock.
    drop(db);
    sync_directory(&directory(path, next))?;
    sync_directory(path)?;
    make_current(path, next)?;
    discard_all_but(path, next)?;
    Ok(Opened { db: fresh, lock })
}

fn lock(path: &Path) -> Result<File, StoreError> {
    let lock_path = path.join(LOCK);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_error(format!("cannot open {}", lock_path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: path.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(error)) => Err(io_error(format!(
            "cannot lock {}",
            lock_path.display()
        ))(error)),
    }
}

/// Where generation `number`'s sled files are.
fn directory(path: &Path, number: u64) -> PathBuf {
    match number {
        0 => path.to_path_buf(),
        number => path.join(format!("sled-{number}")),
    }
}

fn current_generation(path: &Path) -> Result<u64, StoreError> {
    let pointer = path.join(POINTER);
    match std::fs::read_to_string(&pointer) {
        Ok(text) => text.trim().parse().map_err(|_| {
            StoreError::corrupt(pointer.display().to_string(), "not a generation number")
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(error) => Err(io_error(format!("cannot read {}", pointer.display()))(
            error,
        )),
    }
}

fn make_current(path: &Path, number: u64) -> Result<(), StoreError> {
    let temporary = path.join(POINTER_TEMPORARY);
    let mut file = File::create(&temporary)
        .map_err(io_error(format!("cannot create {}", temporary.display())))?;
    file.write_all(format!("{number}\n").as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_error(format!("cannot write {}", temporary.display())))?;
    std::fs::rename(&temporary, path.join(POINTER)).map_err(io_error(format!(
        "cannot replace {}",
        path.join(POINTER).display()
    )))?;
    sync_directory(path)
}

fn sync_directory(path: &Path) -> Result<(), StoreError> {
    File::open(path)
        .and_then(|directory| directory.sync_all())
        .map_err(io_error(format!("cannot sync {}", path.display())))
}

/// Deletes every generation but `current`: a new one a crash left half-written, or an
/// old one a crash left behind after the switch.
fn discard_all_but(path: &Path, current: u64) -> Result<(), StoreError> {
    let entries =
        std::fs::read_dir(path).map_err(io_error(format!("cannot read {}", path.display())))?;
    for entry in entries {
        let entry = entry.map_err(io_error(format!("cannot read {}", path.display())))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            continue;
        };
        let generation = name
            .strip_prefix("sled-")
            .and_then(|number| number.parse::<u64>().ok());
        let old_root_file =
            current != 0 && (ROOT_FILES.contains(&name) || name.starts_with(ROOT_SNAPSHOT_PREFIX));
        let old_root_database = current != 0 && name == ROOT_DATABASE && !entry.path().is_dir();
        let discarded = generation.is_some_and(|number| number != current) || old_root_file;
        if discarded || old_root_database || name == POINTER_TEMPORARY {
            remove(&entry.path())?;
        }
    }
    if current != 0 {
        let guard = path.join(ROOT_DATABASE);
        std::fs::create_dir_all(&guard)
            .and_then(|()| std::fs::write(guard.join("README"), GUARD_NOTE))
            .map_err(io_error(format!("cannot create {}", guard.display())))?;
    }
    sync_directory(path)
}

fn remove(path: &Path) -> Result<(), StoreError> {
    let removed = match path.is_dir() {
        true => std::fs::remove_dir_all(path),
        false => std::fs::remove_file(path),
    };
    match removed {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
            Err(io_error(format!("cannot delete {}", path.display()))(error))
        }
        _ => Ok(()),
    }
}

/// Bytes of every key and value in every tree.
fn live_bytes(db: &Db) -> Result<u64, StoreError> {
    let mut bytes = 0u64;
    for name in db.tree_names() {
        let tree = db
            .open_tree(&name)
            .map_err(backend("measuring the store"))?;
        for entry in tree.iter() {
            let (key, value) = entry.map_err(backend("measuring the store"))?;
            bytes += (key.len() + value.len()) as u64;
        }
    }
    Ok(bytes)
}

/// Copies every tree of `from` into the empty `to`.
fn copy(from: &Db, to: &Db) -> Result<(), StoreError> {
    for name in from.tree_names() {
        let source = from
            .open_tree(&name)
            .map_err(backend("compacting the store"))?;
        let target = to
            .open_tree(&name)
            .map_err(backend("compacting the store"))?;
        let mut batch = sled::Batch::default();
        let mut batched = 0;
        for entry in source.iter() {
            let (key, value) = entry.map_err(backend("compacting the store"))?;
            batch.insert(key, value);
            batched += 1;
            if batched == COPY_BATCH {
                target
                    .apply_batch(std::mem::take(&mut batch))
                    .map_err(backend("compacting the store"))?;
                batched = 0;
            }
        }
        target
            .apply_batch(batch)
            .map_err(backend("compacting the store"))?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "generations_tests.rs"]
mod tests;
