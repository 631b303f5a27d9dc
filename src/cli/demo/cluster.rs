//! A throwaway PostgreSQL cluster: initdb into the demo's directory, a free loopback
//! port, `wal_level = logical`, the socket beside the data, stopped again at the end.
//!
//! initdb and postgres refuse to run as root, so as root they run as the `postgres`
//! user (through `runuser`), in a directory that user owns — as `scripts/postgres.sh`
//! does for the tests.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use anyhow::{Context, anyhow, bail};
use tokio::process::Command;

/// Where distributions put each major version's server binaries.
const DISTRIBUTION_ROOT: &str = "/usr/lib/postgresql";
const OWNER: &str = "postgres";

/// The directory holding `initdb`, `pg_ctl` and `postgres`: `ROWHOOK_PG_BINDIR`, else
/// `pg_config --bindir`, else the highest version under `/usr/lib/postgresql`.
pub(crate) fn find_bindir() -> anyhow::Result<PathBuf> {
    if let Some(directory) = std::env::var_os("ROWHOOK_PG_BINDIR") {
        let directory = PathBuf::from(directory);
        if has_server(&directory) {
            return Ok(directory);
        }
        bail!(
            "ROWHOOK_PG_BINDIR={} does not hold initdb, pg_ctl and postgres",
            directory.display()
        );
    }
    let configured = std::process::Command::new("pg_config")
        .arg("--bindir")
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    if let Some(directory) = configured.filter(|directory| has_server(directory)) {
        return Ok(directory);
    }
    let installed: Vec<PathBuf> = std::fs::read_dir(DISTRIBUTION_ROOT)
        .map(|entries| {
            entries
                .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
                .filter(|directory| has_server(directory))
                .collect()
        })
        .unwrap_or_default();
    highest_version(installed).ok_or_else(|| {
        anyhow!(
            "no PostgreSQL server binaries found (looked at ROWHOOK_PG_BINDIR, \
             `pg_config --bindir` and {DISTRIBUTION_ROOT}/*/bin): install the PostgreSQL \
             server, set ROWHOOK_PG_BINDIR to the directory holding initdb, or pass \
             --database-url"
        )
    })
}

fn has_server(directory: &Path) -> bool {
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|program| directory.join(program).is_file())
}

/// The `…/<version>/bin` directory with the highest version (`16` above `9.6`).
pub(crate) fn highest_version(directories: Vec<PathBuf>) -> Option<PathBuf> {
    let version = |directory: &PathBuf| -> Vec<u32> {
        directory
            .parent()
            .and_then(Path::file_name)
            .and_then(OsStr::to_str)
            .map(|name| {
                name.split('.')
                    .filter_map(|part| part.parse().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    directories.into_iter().max_by_key(version)
}

/// A cluster in `root/data`, logging to `root/postgres.log`, listening on 127.0.0.1.
#[derive(Clone, Debug)]
pub(crate) struct Cluster {
    bindir: PathBuf,
    root: PathBuf,
    pub port: u16,
    /// Whether the server programs run as the `postgres` user (we are root).
    as_owner: bool,
}

impl Cluster {
    /// Chooses the port and, as root, hands `root` to the `postgres` user. Starts nothing.
    pub(crate) fn new(bindir: PathBuf, root: &Path) -> anyhow::Result<Cluster> {
        let as_owner = is_root()?;
        if as_owner {
            let handed = std::process::Command::new("chown")
                .arg(format!("{OWNER}:"))
                .arg(root)
                .output()
                .context("cannot run chown")?;
            if !handed.status.success() {
                bail!(
                    "running as root, and initdb refuses root; handing {} to the {OWNER:?} \
                     user failed (is there one?): {}",
                    root.display(),
                    String::from_utf8_lossy(&handed.stderr).trim()
                );
            }
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .map(|address| address.port())
            .context("cannot find a free port for PostgreSQL")?;
        Ok(Cluster {
            bindir,
            root: root.to_path_buf(),
            port,
            as_owner,
        })
    }

    pub(crate) fn bindir(&self) -> &Path {
        &self.bindir
    }

    fn data(&self) -> PathBuf {
        self.root.join("data")
    }

    fn log(&self) -> PathBuf {
        self.root.join("postgres.log")
    }

    /// A URL for `database` as the `postgres` superuser (trusted on loopback).
    pub(crate) fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// initdb, then the settings the demo needs.
    pub(crate) async fn initialize(&self) -> anyhow::Result<()> {
        let data = self.data();
        let mut initdb = self.server_program("initdb");
        initdb
            .arg("-D")
            .arg(&data)
            // Throwaway data: no fsync, no locale of the host's to depend on.
            .args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ]);
        let output = Command::from(initdb)
            .output()
            .await
            .context("cannot run initdb")?;
        succeeded("initdb", &output)?;
        let socket_directory = self.root.display().to_string().replace('\'', "''");
        let settings = format!(
            "\n# rowhook demo\nlisten_addresses = '127.0.0.1'\nport = {}\n\
             unix_socket_directories = '{socket_directory}'\nwal_level = logical\n\
             max_wal_senders = 5\nmax_replication_slots = 5\nfsync = off\n",
            self.port
        );
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(data.join("postgresql.conf"))
            .context("cannot open postgresql.conf")?;
        std::io::Write::write_all(&mut file, settings.as_bytes())
            .context("cannot write postgresql.conf")?;
        Ok(())
    }

    pub(crate) async fn start(&self) -> anyhow::Result<()> {
        let output = self
            .pg_ctl(&["start", "-w", "-t", "60"])
            .await
            .context("cannot run pg_ctl start")?;
        succeeded("pg_ctl start", &output).map_err(|error| {
            let log = std::fs::read_to_string(self.log()).unwrap_or_default();
            let last_lines: Vec<&str> = log.lines().rev().take(5).collect();
            match last_lines.as_slice() {
                [] => error.context("PostgreSQL did not start"),
                lines => {
                    let said: Vec<&str> = lines.iter().rev().copied().collect();
                    error.context(format!("PostgreSQL did not start: {}", said.join(" / ")))
                }
            }
        })
    }

    /// Stops the server if it runs: fast (sessions ended, clean shutdown), else
    /// immediate. Returns whether there was a server to stop.
    pub(crate) async fn stop(&self) -> anyhow::Result<bool> {
        if !self.data().join("postmaster.pid").exists() {
            return Ok(false);
        }
        let fast = self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "30"]).await;
        if fast.as_ref().is_ok_and(|output| output.status.success()) {
            return Ok(true);
        }
        let immediate = self
            .pg_ctl(&["stop", "-m", "immediate", "-w", "-t", "30"])
            .await
            .context("cannot run pg_ctl stop")?;
        succeeded("pg_ctl stop", &immediate).map(|()| true)
    }

    /// Stops the server immediately, blocking: for when the orderly path was skipped.
    pub(crate) fn stop_at_once(&self) {
        if self.data().join("postmaster.pid").exists() {
            let _ = self
                .pg_ctl_command(&["stop", "-m", "immediate", "-w", "-t", "30"])
                .output();
        }
    }

    async fn pg_ctl(&self, arguments: &[&str]) -> std::io::Result<Output> {
        Command::from(self.pg_ctl_command(arguments)).output().await
    }

    fn pg_ctl_command(&self, arguments: &[&str]) -> std::process::Command {
        let mut command = self.server_program("pg_ctl");
        command
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.log())
            .args(arguments);
        command
    }

    /// A server program, run as the cluster's owner, from the demo's directory (the
    /// owner may not be allowed into ours).
    fn server_program(&self, program: &str) -> std::process::Command {
        let path = self.bindir.join(program);
        let mut command = if self.as_owner {
            let mut runuser = std::process::Command::new("runuser");
            runuser.args(["-u", OWNER, "--"]).arg(path);
            runuser
        } else {
            std::process::Command::new(path)
        };
        command.current_dir(&self.root).stdin(Stdio::null());
        command
    }
}

fn succeeded(what: &str, output: &Output) -> anyhow::Result<()> {
    if output.status.success() {
        return Ok(());
    }
    let mut said = String::from_utf8_lossy(&output.stderr).trim().to_string();
    if said.is_empty() {
        said = String::from_utf8_lossy(&output.stdout).trim().to_string();
    }
    Err(anyhow!("{what} failed ({}): {said}", output.status))
}

/// Whether this process runs as root, where initdb and postgres refuse to run.
fn is_root() -> anyhow::Result<bool> {
    let output = std::process::Command::new("id")
        .arg("-u")
        .output()
        .context("cannot run `id -u`")?;
    Ok(String::from_utf8_lossy(&output.stdout).trim() == "0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_highest_version_wins_numerically() {
        let directories = ["9.6", "15", "16", "13"]
            .iter()
            .map(|version| Path::new(DISTRIBUTION_ROOT).join(version).join("bin"))
            .collect();
        assert_eq!(
            highest_version(directories),
            Some(PathBuf::from("/usr/lib/postgresql/16/bin"))
        );
        assert_eq!(highest_version(Vec::new()), None);
    }
}
