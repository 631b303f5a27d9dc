//! `rowhook backfill MODEL …`, `backfill list`, `backfill cancel ID`: the command-line
//! side of the service's backfill jobs (CONTRACT §8). A job runs in `rowhook run`; this
//! starts it through the admin API and follows it — a progress bar on a terminal, a
//! plain line every few seconds otherwise. Leaving (Ctrl-C) stops only the following.

use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use indicatif::{ProgressBar, ProgressStyle};
use reqwest::Method;
use rowhook::backfill::{BackfillJob, BackfillRequest, JobState};
use rowhook::config::Config;

use super::admin_api::{AdminApi, Answer};
use super::{Failure, load_config};

pub(crate) async fn start(path: &Path, request: BackfillRequest) -> Result<(), Failure> {
    let config = load_config(path)?;
    check_request(&config, &request)?;
    let api = service_api(&config)?;
    let body = serde_json::to_value(&request).map_err(anyhow::Error::from)?;
    let job: BackfillJob = answer(
        api.send(Method::POST, &["api", "backfills"], &[], Some(&body))
            .await
            .map_err(not_running)?,
    )?;
    println!(
        "backfill {}: {} rows of model {} (about {}) to {}",
        job.id,
        job.condition.as_deref().map_or_else(
            || "all".to_string(),
            |condition| format!("the {condition:?}")
        ),
        job.model,
        job.rows_estimated,
        job.webhooks.join(", ")
    );
    follow(&api, job).await
}

pub(crate) async fn list(path: &Path, json: bool) -> Result<(), Failure> {
    let config = load_config(path)?;
    let api = service_api(&config)?;
    let jobs: Vec<BackfillJob> = answer(
        api.send(Method::GET, &["api", "backfills"], &[], None)
            .await
            .map_err(not_running)?,
    )?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&jobs).map_err(anyhow::Error::from)?
        );
    } else {
        print!("{}", jobs_table(&jobs));
    }
    Ok(())
}

pub(crate) async fn cancel(path: &Path, id: u32) -> Result<(), Failure> {
    let config = load_config(path)?;
    let api = service_api(&config)?;
    let job: BackfillJob = answer(
        api.send(
            Method::POST,
            &["api", "backfills", &id.to_string(), "cancel"],
            &[],
            None,
        )
        .await
        .map_err(not_running)?,
    )?;
    println!(
        "backfill {}: cancelled after its current page ({} rows sent so far)",
        job.id, job.rows_done
    );
    Ok(())
}

/// What can be told without the service: the model and webhooks are in the config.
fn check_request(config: &Config, request: &BackfillRequest) -> Result<(), Failure> {
    let file = config.file.display();
    if !config.models.contains_key(&request.model) {
        let known: Vec<&str> = config.models.keys().map(String::as_str).collect();
        return Err(Failure::Configuration(vec![format!(
            "{file}: no model {:?} to backfill (declared: {})",
            request.model,
            known.join(", ")
        )]));
    }
    for name in &request.webhooks {
        match config.webhook(name) {
            Some(webhook) if webhook.model == request.model => {}
            Some(webhook) => {
                return Err(Failure::Configuration(vec![format!(
                    "{file}: webhook {name:?} sends model {:?}, not {:?}",
                    webhook.model, request.model
                )]));
            }
            None => {
                return Err(Failure::Configuration(vec![format!(
                    "{file}: no webhook named {name:?}"
                )]));
            }
        }
    }
    Ok(())
}

fn service_api(config: &Config) -> Result<AdminApi, Failure> {
    let admin = config.admin.as_ref().ok_or_else(|| {
        Failure::Configuration(vec![format!(
            "{}: backfills are jobs of the running service, reached through its admin API, \
             and this config has no [admin] table",
            config.file.display()
        )])
    })?;
    AdminApi::new(admin).map_err(Failure::Runtime)
}

fn not_running(error: anyhow::Error) -> Failure {
    Failure::Runtime(
        error.context("backfills are jobs of the running service: start `rowhook run` first"),
    )
}

/// A refusal the request is to blame for (unknown model, a `--where` PostgreSQL does not
/// accept) is a usage error, exit 2, with the service's message.
fn answer<T>(answer: Answer<T>) -> Result<T, Failure> {
    match answer {
        Answer::Success(value) => Ok(value),
        Answer::Refused { status, message } if status.is_client_error() => {
            Err(Failure::Configuration(vec![format!("error: {message}")]))
        }
        Answer::Refused { status, message } => Err(Failure::Runtime(anyhow!(
            "the service answered {status}: {message}"
        ))),
    }
}

async fn follow(api: &AdminApi, mut job: BackfillJob) -> Result<(), Failure> {
    let terminal = std::io::stderr().is_terminal();
    let interval = if terminal {
        Duration::from_millis(250)
    } else {
        Duration::from_secs(2)
    };
    let bar = terminal.then(|| progress_bar(&job));
    let started = (Instant::now(), job.rows_done);
    let path = [
        "api".to_string(),
        "backfills".to_string(),
        job.id.to_string(),
    ];
    let segments: Vec<&str> = path.iter().map(String::as_str).collect();
    while !job.state.is_finished() {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                if let Some(bar) = &bar {
                    bar.abandon();
                }
                eprintln!(
                    "backfill {id} goes on in the service: `rowhook backfill list` shows it, \
                     `rowhook backfill cancel {id}` stops it",
                    id = job.id
                );
                return Ok(());
            }
            _ = tokio::time::sleep(interval) => {}
        }
        job = api
            .call(Method::GET, &segments, &[], None)
            .await
            .map_err(Failure::Runtime)?;
        let elapsed = started.0.elapsed().as_secs_f64();
        let rate = job.rows_done.saturating_sub(started.1) as f64 / elapsed.max(0.001);
        match &bar {
            Some(bar) => {
                bar.set_length(job.rows_estimated.max(job.rows_done).max(1));
                bar.set_position(job.rows_done);
            }
            None if !job.state.is_finished() => println!("{}", progress_line(&job, rate)),
            None => {}
        }
    }
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    let took = job.finished_at_ms.unwrap_or(job.updated_at_ms);
    let seconds = took.saturating_sub(job.started_at_ms) as f64 / 1000.0;
    match job.state {
        JobState::Done => {
            println!(
                "backfill {}: done, {} rows, {} events in {seconds:.1} s",
                job.id, job.rows_done, job.events_created
            );
            Ok(())
        }
        JobState::Cancelled => Err(Failure::Runtime(anyhow!(
            "backfill {} was cancelled after {} rows",
            job.id,
            job.rows_done
        ))),
        JobState::Failed | JobState::Running => Err(Failure::Runtime(anyhow!(
            "backfill {} failed after {} rows: {}",
            job.id,
            job.rows_done,
            job.error.as_deref().unwrap_or("no reason given")
        ))),
    }
}

fn progress_bar(job: &BackfillJob) -> ProgressBar {
    let bar = ProgressBar::new(job.rows_estimated.max(1));
    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template(
        "backfill {prefix} [{bar:30}] {human_pos}/{human_len} rows · {per_sec} · {eta} left",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(job.id.to_string());
    bar.set_position(job.rows_done);
    bar
}

/// One line of progress where no bar can be drawn.
fn progress_line(job: &BackfillJob, rows_per_second: f64) -> String {
    let mut line = format!("backfill {}: {} rows", job.id, job.rows_done);
    if job.rows_estimated > 0 {
        let percent = (job.rows_done as f64 * 100.0 / job.rows_estimated as f64).min(100.0);
        line.push_str(&format!(" of about {} ({percent:.0}%)", job.rows_estimated));
    }
    line.push_str(&format!(", {rows_per_second:.0} rows/s"));
    let left = job.rows_estimated.saturating_sub(job.rows_done);
    if rows_per_second >= 1.0 && left > 0 {
        line.push_str(&format!(
            ", about {:.0} s left",
            left as f64 / rows_per_second
        ));
    }
    line
}

fn jobs_table(jobs: &[BackfillJob]) -> String {
    if jobs.is_empty() {
        return "no backfill jobs\n".to_string();
    }
    let mut text = format!(
        "{:>4}  {:<16} {:<10} {:>10} {:>10} {:>10}  {}\n",
        "job", "model", "state", "rows", "estimated", "events", "webhooks / where"
    );
    for job in jobs.iter().rev() {
        let mut detail = job.webhooks.join(", ");
        if let Some(condition) = &job.condition {
            detail.push_str(&format!(" where {condition}"));
        }
        if let Some(error) = &job.error {
            detail.push_str(&format!(" — {error}"));
        }
        text.push_str(&format!(
            "{:>4}  {:<16} {:<10} {:>10} {:>10} {:>10}  {detail}\n",
            job.id,
            job.model,
            job.state.as_str(),
            job.rows_done,
            job.rows_estimated,
            job.events_created
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> BackfillJob {
        BackfillJob {
            id: 3,
            model: "order".into(),
            webhooks: vec!["crm".into()],
            condition: Some("id > 10".into()),
            batch: 1000,
            state: JobState::Running,
            error: None,
            cursor: None,
            rows_done: 12_000,
            rows_estimated: 100_000,
            events_created: 12_000,
            started_at_ms: 0,
            updated_at_ms: 0,
            finished_at_ms: None,
        }
    }

    #[test]
    fn progress_lines_say_how_far_how_fast_and_how_long() {
        assert_eq!(
            progress_line(&job(), 8_000.0),
            "backfill 3: 12000 rows of about 100000 (12%), 8000 rows/s, about 11 s left"
        );
        let unknown = BackfillJob {
            rows_estimated: 0,
            ..job()
        };
        assert_eq!(
            progress_line(&unknown, 0.0),
            "backfill 3: 12000 rows, 0 rows/s"
        );
    }

    #[test]
    fn jobs_list_newest_first() {
        let older = BackfillJob { id: 1, ..job() };
        let table = jobs_table(&[older, job()]);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[1].trim_start().starts_with('3'), "{table}");
        assert!(lines[2].trim_start().starts_with('1'), "{table}");
        assert!(lines[1].contains("crm where id > 10"));
        assert_eq!(jobs_table(&[]), "no backfill jobs\n");
    }
}
