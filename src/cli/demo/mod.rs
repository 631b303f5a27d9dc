//! `rowhook demo [--database-url URL]`: rowhook end to end with nothing installed but the
//! PostgreSQL server. It starts a throwaway cluster (or creates a database on the given
//! server), creates a small shop, runs rowhook and a receiver in this process, makes a
//! few changes and shows every delivery and the attempt log.
//!
//! Whatever it starts it stops, and whatever it creates it removes: on success, on
//! failure and on Ctrl-C. Each resource is recorded in [`Started`] as soon as it exists,
//! and the steps are never cancelled halfway (Ctrl-C is checked between them and in
//! every wait), so the clean-up always knows what there is to undo.

mod cluster;
mod external;
mod shop;
mod story;

use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use rowhook::capture::replication;
use rowhook::config::{self, Config};
use rowhook::event::Status;
use rowhook::postgres;
use rowhook::postgres::DatabaseUrl;
use rowhook::receive::{self, ReceiveError, Receiver};
use rowhook::route::Router;
use rowhook::service;
use rowhook::shutdown::{self, Shutdown, ShutdownTrigger};
use rowhook::store::{self, EventStore};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Failure, shutdown_on_signals};
use cluster::Cluster;
use external::ExternalDatabase;
use story::{Story, indented, say};

/// The database the demo creates in its throwaway cluster.
const CLUSTER_DATABASE: &str = "shop";

pub(crate) async fn run(database_url: Option<&str>) -> Result<(), Failure> {
    // Also the name of the slot and the publication, which must not collide with
    // another demo's on a shared server.
    let name = format!("rowhook_demo_{}", std::process::id());
    let external = database_url
        .map(|url| ExternalDatabase::new(url, &name))
        .transpose()?;
    let (_signals, interrupted) = shutdown_on_signals();
    let mut started = Started::default();
    let shown = show(&mut started, external, &name, interrupted.clone()).await;
    let cleaned = started.clean_up().await;
    say(format_args!("\n{}\n", cleaned.report));
    if let Err(mut error) = shown {
        // Ctrl-C also reaches the programs the demo runs (initdb, pg_ctl), which then
        // fail: the interruption is the story, not their failure.
        if interrupted.is_requested() {
            error = story::interrupted();
        }
        for problem in &cleaned.problems {
            eprintln!("error: while cleaning up: {problem}");
        }
        return Err(Failure::Runtime(error));
    }
    match cleaned.problems.as_slice() {
        [] => Ok(()),
        problems => Err(Failure::Runtime(anyhow!(
            "while cleaning up: {}",
            problems.join("; ")
        ))),
    }
}

async fn show(
    started: &mut Started,
    external: Option<ExternalDatabase>,
    name: &str,
    interrupted: Shutdown,
) -> anyhow::Result<()> {
    let directory = create_directory()?;
    started.directory = Some(directory.clone());
    let database_url = match external {
        Some(database) => {
            say(format_args!(
                "Creating database {} on the PostgreSQL server at {} …\n",
                database.name,
                database.server_address()
            ));
            database.create().await?;
            started.database = Some(database.clone());
            database.url
        }
        None => start_cluster(started, &directory, &interrupted).await?,
    };
    stop_if_interrupted(&interrupted)?;

    let url = DatabaseUrl::parse(&database_url).context("the demo database URL")?;
    let client = postgres::connect(&url).await?;
    let sql_error = |error: tokio_postgres::Error| anyhow!("{}", postgres::describe(&error));
    let version: String = client
        .query_one("SHOW server_version", &[])
        .await
        .map_err(sql_error)?
        .get(0);
    client
        .batch_execute(shop::SCHEMA)
        .await
        .map_err(sql_error)
        .context("cannot create the shop schema")?;
    say(format_args!(
        "PostgreSQL {version}, database {}: created the shop's tables {} (sql/shop.sql).\n",
        url.dbname,
        shop::TABLES
    ));

    let (receiver, receipts) = start_receiver(started).await?;
    let config_path = directory.join("rowhook.toml");
    let inbound = {
        // A free loopback port for rowhook's inbound listener, which binds it in a moment.
        let probe = std::net::TcpListener::bind("127.0.0.1:0")
            .context("cannot find a free port for the inbound endpoint")?;
        probe.local_addr()?
    };
    let settings = shop::Settings {
        database_url: &database_url,
        slot: name,
        store: &directory.join("store"),
        receiver,
        inbound,
    };
    std::fs::write(&config_path, shop::config_text(&settings))
        .context("cannot write the demo configuration")?;
    let config = config::load(&config_path).map_err(|errors| anyhow!("{errors}"))?;
    let router = Router::new(&config).map_err(|errors| anyhow!("{errors}"))?;
    say(format_args!(
        "A receiver listens on http://{receiver}/ and verifies signatures.\n\
         rowhook runs with this configuration (besides [source] and [store]):\n\n{}",
        indented(&shop::webhooks_text(receiver, inbound), "  ")
    ));
    // FULL, so that updates carry the old row and which columns changed.
    for line in replication::setup(&client, &config, true).await? {
        say(format_args!("rowhook setup: {line}\n"));
    }
    stop_if_interrupted(&interrupted)?;

    let store = store::open(&config.store).await?;
    let service_stopped = start_service(started, &config, router, store.clone());

    let mut story = Story {
        receipts,
        receiver,
        interrupted,
        service_stopped,
    };
    story.make_changes(&client).await?;
    story.receive_a_task(inbound).await?;
    let events = story.wait_until_settled(store.as_ref()).await?;
    say(format_args!(
        "{}",
        story::attempt_log(&events, store.as_ref(), &config).await?
    ));
    let failed = events
        .iter()
        .filter(|event| event.status == Status::Failed)
        .count();
    if failed > 0 {
        bail!(
            "{failed} of {} events failed; see their attempts above",
            events.len()
        );
    }
    let retried = events.iter().filter(|event| event.attempts > 1).count();
    say(format_args!(
        "\nAll {} events delivered ({retried} after a retry).\n",
        events.len()
    ));
    Ok(())
}

/// Starts the throwaway cluster and creates the demo database; returns its URL.
async fn start_cluster(
    started: &mut Started,
    directory: &Path,
    interrupted: &Shutdown,
) -> anyhow::Result<String> {
    let cluster = Cluster::new(cluster::find_bindir()?, directory)?;
    started.cluster = Some(cluster.clone());
    say(format_args!(
        "Starting a throwaway PostgreSQL cluster ({}) on 127.0.0.1:{} in {} …\n",
        cluster.bindir().display(),
        cluster.port,
        directory.display()
    ));
    cluster.initialize().await?;
    stop_if_interrupted(interrupted)?;
    cluster.start().await?;
    let server = DatabaseUrl::parse(&cluster.url("postgres"))?;
    postgres::connect(&server)
        .await?
        .batch_execute(&format!("CREATE DATABASE {CLUSTER_DATABASE}"))
        .await
        .map_err(|error| anyhow!("{}", postgres::describe(&error)))
        .context("cannot create the demo database")?;
    Ok(cluster.url(CLUSTER_DATABASE))
}

/// `rowhook run`'s service in this process, on the demo's own shutdown signal, which
/// also fires when the service stops by itself; returns that signal.
fn start_service(
    started: &mut Started,
    config: &Config,
    router: Router,
    store: Arc<dyn EventStore>,
) -> Shutdown {
    let (trigger, stopped) = shutdown::channel();
    let (config, service_trigger, shutdown) = (config.clone(), trigger.clone(), stopped.clone());
    let task = tokio::spawn(async move {
        service::serve(&config, router, store, service_trigger, shutdown).await
    });
    started.service = Some(Running { trigger, task });
    stopped
}

/// The receiver on a free loopback port, answering as [`shop::Answers`] says.
async fn start_receiver(
    started: &mut Started,
) -> anyhow::Result<(SocketAddr, mpsc::UnboundedReceiver<receive::Receipt>)> {
    let listener = receive::listen(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
    let address = listener.local_addr().context("the receiver's address")?;
    let (sender, receipts) = mpsc::unbounded_channel();
    let answers = shop::Answers::default();
    let receiver = Receiver {
        secret: Some(shop::SECRET.to_string()),
        answer: Arc::new(move |request| answers.answer(request)),
        receipts: sender,
    };
    let (trigger, shutdown) = shutdown::channel();
    let task = tokio::spawn(receive::serve(listener, receiver, shutdown));
    started.receiver = Some(Running { trigger, task });
    Ok((address, receipts))
}

fn stop_if_interrupted(interrupted: &Shutdown) -> anyhow::Result<()> {
    if interrupted.is_requested() {
        return Err(story::interrupted());
    }
    Ok(())
}

/// A private directory for the cluster, the configuration and the store.
fn create_directory() -> anyhow::Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or_default();
    let directory =
        std::env::temp_dir().join(format!("rowhook-demo-{}-{nanos}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&directory)
        .with_context(|| format!("cannot create {}", directory.display()))?;
    Ok(directory)
}

/// A task the demo started, and how to stop it.
struct Running<T> {
    trigger: ShutdownTrigger,
    task: JoinHandle<T>,
}

/// Everything the demo started or created so far.
#[derive(Default)]
struct Started {
    directory: Option<PathBuf>,
    cluster: Option<Cluster>,
    database: Option<ExternalDatabase>,
    service: Option<Running<Result<(), service::ServiceError>>>,
    receiver: Option<Running<Result<(), ReceiveError>>>,
}

/// What the clean-up did, and what it could not do.
struct CleanUp {
    report: String,
    problems: Vec<String>,
}

impl Started {
    /// Undoes everything, in reverse order of dependence: rowhook before the receiver it
    /// sends to and the database it reads, the database before the server, the server
    /// before its directory.
    async fn clean_up(mut self) -> CleanUp {
        let mut done = Vec::new();
        let mut problems = Vec::new();
        if let Some(service) = self.service.take() {
            service.trigger.trigger();
            match service.task.await {
                Ok(Ok(())) => done.push("stopped rowhook".to_string()),
                Ok(Err(failure)) => problems.push(format!(
                    "rowhook failed: {:#}",
                    anyhow::Error::from(failure)
                )),
                Err(error) => problems.push(format!("the rowhook task failed: {error}")),
            }
        }
        if let Some(receiver) = self.receiver.take() {
            receiver.trigger.trigger();
            match receiver.task.await {
                Ok(Ok(())) => done.push("stopped the receiver".to_string()),
                Ok(Err(error)) => problems.push(error.to_string()),
                Err(error) => problems.push(format!("the receiver task failed: {error}")),
            }
        }
        if let Some(database) = self.database.take() {
            match database.drop_all().await {
                Ok(()) => done.push(format!("dropped database and slot {}", database.name)),
                Err(error) => problems.push(format!("{error:#}")),
            }
        }
        if let Some(cluster) = self.cluster.take() {
            match cluster.stop().await {
                Ok(true) => done.push("stopped PostgreSQL".to_string()),
                Ok(false) => {}
                Err(error) => problems.push(format!("{error:#}")),
            }
        }
        if let Some(directory) = self.directory.take() {
            match remove_directory(&directory).await {
                Ok(()) => done.push(format!("removed {}", directory.display())),
                Err(error) => problems.push(format!("{error:#}")),
            }
        }
        let report = if done.is_empty() {
            "Nothing to clean up.".to_string()
        } else {
            format!("Cleaned up: {}.", done.join(", "))
        };
        CleanUp { report, problems }
    }
}

impl Drop for Started {
    /// Finds something left only when a panic skipped [`Started::clean_up`]: then at least
    /// no server outlives the demo and no directory stays behind. Tasks end with the
    /// runtime; a database on a given server, which takes async work to drop, stays.
    fn drop(&mut self) {
        if let Some(cluster) = self.cluster.take() {
            cluster.stop_at_once();
        }
        if let Some(directory) = self.directory.take() {
            let _ = std::fs::remove_dir_all(directory);
        }
    }
}

/// Removes `directory`, trying again briefly: a server that just stopped, or the store's
/// last flush, may still be writing into it.
async fn remove_directory(directory: &Path) -> anyhow::Result<()> {
    let mut tries = 0;
    loop {
        match std::fs::remove_dir_all(directory) {
            Ok(()) => return Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(_) if tries < 10 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => {
                return Err(error)
                    .with_context(|| format!("cannot remove {}", directory.display()));
            }
        }
    }
}
