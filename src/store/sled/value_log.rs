//! Where large values live: append-only segment files beside sled, so that sled holds
//! only small ones. sled is log-structured and relocates the live pages of half-empty
//! segments whole; with values of kilobytes among small, often rewritten ones, it rewrote
//! each many times over (a quarter of a megabyte written per event, as measured). Here a
//! value is written once, read with one `pread`, and its bytes go when the whole segment
//! file goes. Chunks (written once) and state pages (a new version on every change) live
//! here; sled's index says which version is current.
//!
//! A chunk append writes its chunks, then `fdatasync`s, and only then is the sled batch
//! that points at them written: an index entry never points at chunk bytes that are not
//! durable. State pages are not synced (attempt records may be lost in a crash; the
//! attempt is then made again), so a page whose checksum fails reads as an older
//! history, never as garbage. Bytes written without their index entry (a crash in
//! between) are garbage nobody reads. Each record is `length (4) · CRC-32 (4) · value`.
//!
//! Segments where few values are still live are compacted: their live values are written
//! again at the end of the log, their index entries moved, and the file deleted — only
//! after sled has flushed the index that no longer points there.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::store::StoreError;

/// A segment file is closed for appends past this size (small in tests, so that they
/// roll, delete and compact segments). A segment goes only once nothing in it is live, so
/// the log carries up to about two segments beyond its live bytes (the one straddling the
/// retention cutoff, the one appended to): 16 MiB keeps that small beside a round of live
/// events and still makes a backlog of a million events only some sixty files.
#[cfg(not(test))]
const SEGMENT_BYTES: u64 = 16 * 1024 * 1024;
#[cfg(test)]
const SEGMENT_BYTES: u64 = 256 * 1024;
const RECORD_HEADER: u64 = 8;

/// Where a chunk is in the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Location {
    pub(super) segment: u64,
    pub(super) offset: u64,
    pub(super) length: u32,
}

impl Location {
    /// What a record at this location takes in its file.
    fn bytes(&self) -> u64 {
        RECORD_HEADER + u64::from(self.length)
    }
}

pub(super) struct ValueLog {
    directory: PathBuf,
    files: Mutex<Files>,
}

#[derive(Default)]
struct Files {
    /// The segment appended to, and its length.
    current: Option<(u64, File, u64)>,
    /// Live bytes per segment, as the index says.
    live: BTreeMap<u64, u64>,
    /// Every segment file's length.
    sizes: BTreeMap<u64, u64>,
}

fn io_error(doing: String) -> impl FnOnce(std::io::Error) -> StoreError {
    move |error| StoreError::backend(doing, error)
}

impl ValueLog {
    pub(super) fn open(directory: &Path) -> Result<ValueLog, StoreError> {
        std::fs::create_dir_all(directory)
            .map_err(io_error(format!("cannot create {}", directory.display())))?;
        let mut files = Files::default();
        let entries = std::fs::read_dir(directory)
            .map_err(io_error(format!("cannot read {}", directory.display())))?;
        for entry in entries {
            let entry = entry.map_err(io_error(format!("cannot read {}", directory.display())))?;
            let name = entry.file_name();
            let Some(segment) = name
                .to_str()
                .and_then(|name| name.strip_suffix(".log"))
                .and_then(|number| number.parse::<u64>().ok())
            else {
                continue;
            };
            let length = entry
                .metadata()
                .map_err(io_error(format!("cannot read {}", entry.path().display())))?
                .len();
            files.sizes.insert(segment, length);
        }
        Ok(ValueLog {
            directory: directory.to_path_buf(),
            files: Mutex::new(files),
        })
    }

    fn files(&self) -> std::sync::MutexGuard<'_, Files> {
        self.files
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn path(&self, segment: u64) -> PathBuf {
        self.directory.join(format!("{segment:016}.log"))
    }

    /// Writes `values`, durably when `sync`; returns where each went.
    pub(super) fn append(&self, values: &[&[u8]], sync: bool) -> Result<Vec<Location>, StoreError> {
        let mut files = self.files();
        let mut locations = Vec::with_capacity(values.len());
        let mut written: Vec<u64> = Vec::new();
        for chunk in values {
            let length = u32::try_from(chunk.len())
                .map_err(|_| StoreError::corrupt("a stored value", "larger than 4 GiB"))?;
            let full = files
                .current
                .as_ref()
                .is_none_or(|(_, _, size)| *size >= SEGMENT_BYTES);
            if full {
                self.start_segment(&mut files)?;
            }
            let Some((segment, file, size)) = files.current.as_mut() else {
                continue;
            };
            let mut record = Vec::with_capacity(chunk.len() + RECORD_HEADER as usize);
            record.extend_from_slice(&length.to_be_bytes());
            record.extend_from_slice(&crc32fast::hash(chunk).to_be_bytes());
            record.extend_from_slice(chunk);
            file.write_all(&record).map_err(io_error(format!(
                "cannot write {}",
                self.path(*segment).display()
            )))?;
            let location = Location {
                segment: *segment,
                offset: *size,
                length,
            };
            *size += location.bytes();
            let (segment, size) = (*segment, *size);
            files.sizes.insert(segment, size);
            if !written.contains(&segment) {
                written.push(segment);
            }
            locations.push(location);
        }
        // Durable before any index entry points here. A segment closed during this
        // append is synced too (it is no longer `current`).
        for segment in written.into_iter().filter(|_| sync) {
            let sync = match &files.current {
                Some((current, file, _)) if *current == segment => file.sync_data(),
                _ => File::open(self.path(segment)).and_then(|file| file.sync_data()),
            };
            sync.map_err(io_error(format!(
                "cannot sync {}",
                self.path(segment).display()
            )))?;
        }
        Ok(locations)
    }

    /// Starts a new segment after every existing one.
    fn start_segment(&self, files: &mut Files) -> Result<(), StoreError> {
        let segment = files.sizes.keys().next_back().map_or(1, |last| last + 1);
        let path = self.path(segment);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(io_error(format!("cannot create {}", path.display())))?;
        // The new file's name must be durable too, or a crash could lose the file while
        // the index points into it.
        File::open(&self.directory)
            .and_then(|directory| directory.sync_all())
            .map_err(io_error(format!(
                "cannot sync {}",
                self.directory.display()
            )))?;
        files.sizes.insert(segment, 0);
        files.current = Some((segment, file, 0));
        Ok(())
    }

    pub(super) fn read(&self, location: Location) -> Result<Vec<u8>, StoreError> {
        let path = self.path(location.segment);
        let file =
            File::open(&path).map_err(io_error(format!("cannot open {}", path.display())))?;
        let mut record = vec![0u8; location.bytes() as usize];
        file.read_exact_at(&mut record, location.offset)
            .map_err(io_error(format!("cannot read {}", path.display())))?;
        let (header, chunk) = record.split_at(RECORD_HEADER as usize);
        let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
        let checksum = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
        if length != location.length || crc32fast::hash(chunk) != checksum {
            return Err(StoreError::corrupt(
                format!("value at {}:{}", path.display(), location.offset),
                "its checksum does not match",
            ));
        }
        record.drain(..RECORD_HEADER as usize);
        Ok(record)
    }

    /// The index says the value at `location` is live (`true`) or gone (`false`).
    pub(super) fn account(&self, location: Location, live: bool) {
        let mut files = self.files();
        let bytes = files.live.entry(location.segment).or_default();
        if live {
            *bytes += location.bytes();
        } else {
            *bytes = bytes.saturating_sub(location.bytes());
        }
    }

    /// Deletes segment files no live value is in (the one appended to stays), and
    /// returns the segments worth compacting: less than a quarter of them still live.
    /// Call it only once the index that stopped pointing into them is flushed.
    pub(super) fn tidy(&self) -> Result<Vec<u64>, StoreError> {
        let mut files = self.files();
        let current = files.current.as_ref().map(|(segment, _, _)| *segment);
        let mut worth_compacting = Vec::new();
        let segments: Vec<(u64, u64)> = files.sizes.iter().map(|(s, z)| (*s, *z)).collect();
        for (segment, size) in segments {
            if Some(segment) == current {
                continue;
            }
            let live = files.live.get(&segment).copied().unwrap_or(0);
            if live == 0 {
                let path = self.path(segment);
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                    Err(error) => {
                        return Err(io_error(format!("cannot delete {}", path.display()))(error));
                    }
                }
                files.sizes.remove(&segment);
                files.live.remove(&segment);
            } else if live * 4 < size {
                worth_compacting.push(segment);
            }
        }
        Ok(worth_compacting)
    }

    /// Bytes of every segment file.
    pub(super) fn size(&self) -> u64 {
        self.files().sizes.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Scratch(PathBuf);

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn scratch() -> Scratch {
        Scratch(std::env::temp_dir().join(format!(
            "rowhook-value-log-{}-{}",
            std::process::id(),
            crate::time::now_micros()
        )))
    }

    #[test]
    fn chunks_come_back_and_dead_segments_go() {
        let directory = scratch();
        let log = ValueLog::open(&directory.0).unwrap();
        let locations = log.append(&[b"first", b"second chunk"], true).unwrap();
        assert_eq!(log.read(locations[0]).unwrap(), b"first");
        assert_eq!(log.read(locations[1]).unwrap(), b"second chunk");
        assert_eq!(locations[1].offset, RECORD_HEADER + 5);
        for location in &locations {
            log.account(*location, true);
        }
        // The segment appended to is never deleted, even when nothing in it is live.
        for location in &locations {
            log.account(*location, false);
        }
        assert_eq!(log.tidy().unwrap(), Vec::<u64>::new());
        assert!(log.path(1).exists());

        // Reopened, appends go to a new segment; the old one, empty, goes.
        drop(log);
        let log = ValueLog::open(&directory.0).unwrap();
        let later = log.append(&[b"third"], true).unwrap();
        assert_eq!(later[0].segment, 2);
        log.account(later[0], true);
        log.tidy().unwrap();
        assert!(!log.path(1).exists());
        assert_eq!(log.read(later[0]).unwrap(), b"third");
    }

    #[test]
    fn damaged_chunks_are_reported_not_returned() {
        let directory = scratch();
        let log = ValueLog::open(&directory.0).unwrap();
        let location = log.append(&[b"precious"], false).unwrap()[0];
        let file = OpenOptions::new().write(true).open(log.path(1)).unwrap();
        file.write_all_at(b"X", location.offset + RECORD_HEADER)
            .unwrap();
        let error = log.read(location).unwrap_err().to_string();
        assert!(error.contains("checksum"), "{error}");
        let beyond = Location {
            offset: 1_000,
            ..location
        };
        assert!(log.read(beyond).is_err());
    }

    #[test]
    fn sparse_segments_are_worth_compacting() {
        let directory = scratch();
        let log = ValueLog::open(&directory.0).unwrap();
        let big = vec![7u8; 1_000];
        let locations = log.append(&[&big, &big, &big, &big, &big], true).unwrap();
        log.account(locations[0], true);
        drop(log);
        let log = ValueLog::open(&directory.0).unwrap();
        log.account(locations[0], true);
        log.append(&[b"new segment"], true).unwrap();
        assert_eq!(log.tidy().unwrap(), vec![1]);
    }
}
