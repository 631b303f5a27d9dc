//! A small fuzzing harness for the parsers that read what rowhook does not control: the
//! pgoutput stream, CopyBoth frames, connection strings, configuration files and outbox
//! rows. Each target is a unit test next to the code it exercises (so it can reach
//! private items) and calls [`fuzz`].
//!
//! A run replays the checked-in corpus (`fuzz/corpus/<target>/`, every file one input),
//! then mutates it until the time budget is spent: `ROWHOOK_FUZZ_SECONDS` (default 2;
//! `0` replays the corpus only). The seed is random unless `ROWHOOK_FUZZ_SEED` is set,
//! and printed, so a run can be repeated. There is no coverage feedback: this finds the
//! shallow crashes, which is what a parser of hostile input must not have.
//!
//! An input fails when the target panics, returns an error (a broken property), runs for
//! longer than [`SLOW`], or asks for a single allocation far larger than itself (a length
//! field trusted before the bytes behind it arrived). An input that never returns ends the
//! test binary after [`HANG`], after printing it. Failing inputs are printed and written to
//! `target/fuzz-failures/<target>/`; each one found becomes a regression test next to the
//! code fixed and an entry of the corpus. A stack overflow cannot be caught: it aborts the
//! process, and `ROWHOOK_FUZZ_SEED` with `ROWHOOK_FUZZ_KEEP_CURRENT=<file>` repeats the run
//! leaving the input that overflowed in the file.

mod allocation;
mod mutate;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mutate::Mutator;
pub(crate) use mutate::Random;

/// One input taking this long is a failure: every target is linear in its input.
const SLOW: Duration = Duration::from_secs(2);
/// One input taking this long is a hang: the harness cannot interrupt it, so it reports
/// the input and ends the process.
const HANG: Duration = Duration::from_secs(30);
/// Allocations up to this size are never blamed on an input: ordinary buffers.
const ALLOCATION_ALLOWANCE: usize = 1 << 20;
/// Beyond the allowance, an input may make a single allocation this many times its length.
const ALLOCATION_FACTOR: usize = 64;
/// A run stops early after this many failures: the first few say what is wrong.
const MAX_FAILURES: usize = 5;

/// What a target is and how to run it.
pub(crate) struct Target<'a> {
    /// Also the name of its corpus directory.
    pub name: &'static str,
    /// Tokens the mutator inserts: the syntax's punctuation and keywords.
    pub dictionary: &'a [&'a [u8]],
    /// Longer mutated inputs are cut to this length.
    pub max_length: usize,
    /// Directories (relative to the crate) whose files seed the corpus besides
    /// `fuzz/corpus/<name>/`, for inputs that already live in the repository.
    pub extra_corpus: &'a [&'a str],
    /// Runs one input; `Err` says which property does not hold.
    pub execute: &'a dyn Fn(&[u8]) -> Result<(), String>,
}

/// Fuzzes `target` for the configured budget, prints one line with the number of
/// executions, and panics when any input failed.
pub(crate) fn fuzz(target: Target<'_>) {
    let corpus = load_corpus(&target);
    let seed = std::env::var("ROWHOOK_FUZZ_SEED")
        .ok()
        .and_then(|seed| parse_seed(&seed))
        .unwrap_or_else(random_seed);
    // Printed first as well: a stack overflow aborts the process before the last line,
    // and the seed repeats the run up to the input that overflowed.
    println!("\nfuzz {}: seed {seed:#x}", target.name);
    let keep_current = std::env::var_os("ROWHOOK_FUZZ_KEEP_CURRENT").map(PathBuf::from);
    let report = run(&target, &corpus, budget(), seed, keep_current.as_deref());
    println!(
        "fuzz {}: {} executions in {:.1} s, {} failures (corpus {}, seed {seed:#x})",
        target.name,
        report.executions,
        report.elapsed.as_secs_f64(),
        report.failures.len(),
        corpus.len(),
    );
    if report.failures.is_empty() {
        return;
    }
    let directory = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/fuzz-failures")
        .join(target.name);
    let mut lines = Vec::new();
    for (index, failure) in report.failures.iter().enumerate() {
        let file = directory.join(format!("{seed:x}-{index}"));
        let saved = std::fs::create_dir_all(&directory)
            .and_then(|()| std::fs::write(&file, &failure.input))
            .map_or_else(
                |error| format!("not saved: {error}"),
                |()| file.display().to_string(),
            );
        lines.push(format!(
            "{}\n  input ({saved}): {}",
            failure.reason,
            printable(&failure.input)
        ));
    }
    panic!(
        "fuzz {}: failing inputs:\n{}",
        target.name,
        lines.join("\n")
    );
}

/// A failing input and why.
struct Failure {
    input: Vec<u8>,
    reason: String,
}

struct Report {
    executions: u64,
    elapsed: Duration,
    failures: Vec<Failure>,
}

/// Replays `corpus`, then mutates it until `budget` is spent. With `keep_current`, each
/// input is written to that file before it runs, so the one that aborted the process
/// (a stack overflow) is left there.
fn run(
    target: &Target<'_>,
    corpus: &[Vec<u8>],
    budget: Duration,
    seed: u64,
    keep_current: Option<&Path>,
) -> Report {
    let started = Instant::now();
    let watchdog = Watchdog::start(target.name);
    let mut failures = Vec::new();
    let mut executions = 0;
    let mut mutator = Mutator::new(seed, corpus, target.dictionary, target.max_length);
    let mut entries = corpus.iter();
    loop {
        let input = match entries.next() {
            Some(entry) => entry.clone(),
            // The clock is read once per batch: reading it costs as much as a small input.
            None if budget.is_zero() || (executions % 64 == 0 && started.elapsed() >= budget) => {
                break;
            }
            None => mutator.next_input(),
        };
        watchdog.starting(&input);
        if let Some(file) = keep_current {
            std::fs::write(file, &input)
                .unwrap_or_else(|error| panic!("{}: {error}", file.display()));
        }
        if let Some(reason) = execute(target, &input) {
            failures.push(Failure { input, reason });
        }
        executions += 1;
        if failures.len() >= MAX_FAILURES {
            break;
        }
    }
    watchdog.stop();
    Report {
        executions,
        elapsed: started.elapsed(),
        failures,
    }
}

/// Runs one input; `Some(reason)` when it fails.
fn execute(target: &Target<'_>, input: &[u8]) -> Option<String> {
    allocation::largest_allocation();
    let started = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| (target.execute)(input)));
    let elapsed = started.elapsed();
    let largest = allocation::largest_allocation();
    let limit = ALLOCATION_ALLOWANCE + ALLOCATION_FACTOR * input.len();
    match outcome {
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|message| message.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_string());
            Some(format!("panicked: {message}"))
        }
        Ok(Err(broken)) => Some(format!("property does not hold: {broken}")),
        Ok(Ok(())) if largest > limit => Some(format!(
            "allocated {largest} bytes at once for an input of {} bytes",
            input.len()
        )),
        Ok(Ok(())) if elapsed > SLOW => Some(format!("took {elapsed:?}")),
        Ok(Ok(())) => None,
    }
}

/// Watches a run from another thread: an input that never returns cannot be stopped, but
/// it can be printed before the process ends.
struct Watchdog {
    input: Arc<Mutex<Vec<u8>>>,
    executions: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
}

impl Watchdog {
    fn start(name: &'static str) -> Watchdog {
        let watchdog = Watchdog {
            input: Arc::default(),
            executions: Arc::default(),
            done: Arc::default(),
        };
        let (input, executions, done) = (
            Arc::clone(&watchdog.input),
            Arc::clone(&watchdog.executions),
            Arc::clone(&watchdog.done),
        );
        std::thread::spawn(move || {
            let mut last = (0, Instant::now());
            while !done.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100));
                let count = executions.load(Ordering::Relaxed);
                if count != last.0 {
                    last = (count, Instant::now());
                } else if last.1.elapsed() > HANG {
                    let input = input.lock().map(|input| input.clone()).unwrap_or_default();
                    eprintln!(
                        "fuzz {name}: an input has run for over {HANG:?} (a hang): {}",
                        printable(&input)
                    );
                    std::process::exit(101);
                }
            }
        });
        watchdog
    }

    fn starting(&self, input: &[u8]) {
        if let Ok(mut current) = self.input.lock() {
            current.clear();
            current.extend_from_slice(input);
        }
        self.executions.fetch_add(1, Ordering::Relaxed);
    }

    fn stop(self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

/// An input as an escaped byte string, its first kilobyte only: the whole is in the file.
fn printable(input: &[u8]) -> String {
    const SHOWN: usize = 1024;
    let shown = bytes::Bytes::copy_from_slice(&input[..input.len().min(SHOWN)]);
    match input.len().checked_sub(SHOWN) {
        Some(more) if more > 0 => format!("{shown:?} and {more} more bytes"),
        _ => format!("{shown:?}"),
    }
}

/// `ROWHOOK_FUZZ_SECONDS`, 2 s when unset.
fn budget() -> Duration {
    let seconds = std::env::var("ROWHOOK_FUZZ_SECONDS").map_or(2.0, |text| {
        text.trim()
            .parse::<f64>()
            .ok()
            .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
            .unwrap_or_else(|| panic!("ROWHOOK_FUZZ_SECONDS={text:?}: expected seconds"))
    });
    Duration::from_secs_f64(seconds)
}

/// A seed in decimal or `0x` hexadecimal, as printed.
fn parse_seed(text: &str) -> Option<u64> {
    let text = text.trim();
    match text.strip_prefix("0x") {
        Some(hexadecimal) => u64::from_str_radix(hexadecimal, 16).ok(),
        None => text.parse().ok(),
    }
}

fn random_seed() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(Instant::now())
}

/// Every file of `fuzz/corpus/<name>/` and of the extra directories, in name order.
fn load_corpus(target: &Target<'_>) -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let own = root.join("fuzz/corpus").join(target.name);
    let directories =
        std::iter::once(own).chain(target.extra_corpus.iter().map(|extra| root.join(extra)));
    let mut files: Vec<PathBuf> = Vec::new();
    for directory in directories {
        let entries = std::fs::read_dir(&directory)
            .unwrap_or_else(|error| panic!("corpus {}: {error}", directory.display()));
        files.extend(entries.map(|entry| entry.expect("corpus entry").path()));
    }
    files.retain(|path| path.is_file());
    files.sort();
    assert!(
        !files.is_empty(),
        "fuzz {}: the corpus is empty",
        target.name
    );
    files
        .iter()
        .map(|path| {
            std::fs::read(path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
        })
        .collect()
}

/// The corpus entries of `name` that are valid inputs, with their paths: all but the
/// `crash-*` files, which hold inputs that once failed.
pub(crate) fn valid_corpus(name: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let directory = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(name);
    let mut entries: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&directory)
        .unwrap_or_else(|error| panic!("corpus {}: {error}", directory.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .filter(|path| {
            !path
                .file_name()
                .is_some_and(|file| file.to_string_lossy().starts_with("crash-"))
        })
        .map(|path| {
            let bytes =
                std::fs::read(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
            (path, bytes)
        })
        .collect();
    entries.sort();
    assert!(!entries.is_empty(), "fuzz {name}: no valid corpus entries");
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(execute: &dyn Fn(&[u8]) -> Result<(), String>) -> Target<'_> {
        Target {
            name: "harness",
            dictionary: &[b"!"],
            max_length: 64,
            extra_corpus: &[],
            execute,
        }
    }

    #[test]
    fn a_panic_a_broken_property_and_a_huge_allocation_are_failures() {
        let execute = |input: &[u8]| {
            match input.first() {
                Some(b'p') => panic!("boom"),
                Some(b'e') => return Err("wrong".to_string()),
                Some(b'a') => drop(Vec::<u8>::with_capacity(1 << 26)),
                _ => {}
            }
            Ok(())
        };
        let corpus = [
            b"p".to_vec(),
            b"e".to_vec(),
            b"a".to_vec(),
            b"fine".to_vec(),
        ];
        let report = run(&target(&execute), &corpus, Duration::ZERO, 1, None);
        assert_eq!(
            report.executions, 4,
            "a zero budget replays the corpus only"
        );
        let reasons: Vec<&str> = report.failures.iter().map(|f| f.reason.as_str()).collect();
        assert_eq!(
            reasons,
            [
                "panicked: boom",
                "property does not hold: wrong",
                "allocated 67108864 bytes at once for an input of 1 bytes",
            ]
        );
    }

    #[test]
    fn mutation_finds_what_the_corpus_is_near() {
        // Only a mutated input holds a '!' byte after a '{': the corpus entries do not.
        let execute = |input: &[u8]| match input.windows(2).any(|pair| pair == b"{!") {
            true => Err("found".to_string()),
            false => Ok(()),
        };
        let corpus = [b"{}".to_vec()];
        let report = run(&target(&execute), &corpus, Duration::from_secs(5), 3, None);
        assert!(
            !report.failures.is_empty(),
            "{} executions",
            report.executions
        );
        assert!(
            report.elapsed < Duration::from_secs(5),
            "stops at the first failures"
        );
    }

    #[test]
    fn seeds_read_as_printed() {
        assert_eq!(parse_seed("0x2a"), Some(42));
        assert_eq!(parse_seed("42"), Some(42));
        assert_eq!(parse_seed("x"), None);
    }
}
