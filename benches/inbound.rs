//! Inbound benchmark: accepted requests per second into a deduplicated inbox table, with
//! keep-alive clients, and the answer time (p50, p99), measured with `fsync = on`. The
//! reference, in the same run, is the same `INSERT … ON CONFLICT DO NOTHING` sent
//! straight to PostgreSQL over as many connections: the ratio is what HTTP, the sender
//! check and the request log cost.

#[allow(dead_code)]
#[path = "deliver/harness.rs"]
mod harness;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use harness::{Database, Service, connect, percentile, rowhook};

const REQUESTS: usize = 40_000;
const CLIENTS: usize = 32;
const INBOX: &str = "CREATE TABLE inbox (id bigserial PRIMARY KEY, event_id text UNIQUE NOT NULL,
     title text, payload jsonb, received_at timestamptz)";

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn body(number: usize) -> String {
    format!(
        r#"{{"task":{{"title":"Call back customer {number}","priority":{}}}}}"#,
        number % 5
    )
}

/// Requests/s and answer times (ms) through rowhook's inbound endpoint.
async fn through_rowhook(binary: &std::path::Path) -> (f64, Vec<f64>) {
    let database = Database::create("bench_inbound").await;
    database.client.batch_execute(INBOX).await.expect("inbox");
    let port = free_port();
    let config = database.directory.join("rowhook.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\nurl = \"{}\"\nslot = \"{}\"\n\n[store]\npath = \"{}\"\n\n\
             [models.order]\ntable = \"orders\"\n\n\
             [inbound]\nlisten = \"127.0.0.1:{port}\"\n\n\
             [[inbound.endpoints]]\nname = \"tasks\"\ntable = \"inbox\"\n\
             basic = {{ user = \"bench\", password = \"secret\" }}\n\
             columns = {{ event_id = \"headers.webhook-id\", title = \"body.task.title\", \
             payload = \"body\", received_at = \"now\" }}\ndedupe = \"event_id\"\n",
            database.url,
            database.name,
            database.directory.join("store").display()
        ),
    )
    .expect("config");
    rowhook(binary, &config, &["setup"]);
    let service = Service::start(binary, &config, "inbound");
    let url = format!("http://127.0.0.1:{port}/in/tasks");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CLIENTS)
        .build()
        .expect("client");
    // Until it listens.
    for _ in 0..100 {
        if client.post(&url).send().await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..CLIENTS {
        let (client, url, next) = (client.clone(), url.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut times = Vec::new();
            loop {
                let number = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if number >= REQUESTS {
                    return times;
                }
                let sent = Instant::now();
                let answer = client
                    .post(&url)
                    .basic_auth("bench", Some("secret"))
                    .header("content-type", "application/json")
                    .header("webhook-id", format!("msg_{number}"))
                    .body(body(number))
                    .send()
                    .await
                    .expect("an answer");
                assert_eq!(answer.status(), 200, "request {number}");
                times.push(sent.elapsed().as_secs_f64() * 1000.0);
            }
        }));
    }
    let mut times = Vec::new();
    for worker in workers {
        times.extend(worker.await.expect("a client"));
    }
    let rate = REQUESTS as f64 / started.elapsed().as_secs_f64();
    let rows: i64 = database
        .client
        .query_one("SELECT count(*) FROM inbox", &[])
        .await
        .expect("count")
        .get(0);
    assert_eq!(rows as usize, REQUESTS);
    service.stop();
    database.remove().await;
    (rate, times)
}

/// Inserts/s of the same rows straight into PostgreSQL over `CLIENTS` connections.
async fn straight_to_postgres() -> f64 {
    let database = Database::create("bench_inbound_reference").await;
    database.client.batch_execute(INBOX).await.expect("inbox");
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    let started = Instant::now();
    for _ in 0..CLIENTS {
        let (url, next) = (database.url.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let client = connect(&url).await;
            loop {
                let number = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if number >= REQUESTS {
                    return;
                }
                let payload = body(number);
                let parameters: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
                    [&format!("msg_{number}"), &payload, &payload];
                client
                    .execute(
                        "INSERT INTO inbox (event_id, title, payload, received_at) \
                         VALUES ($1, ($2::text::jsonb)->'task'->>'title', $3::text::jsonb, now()) \
                         ON CONFLICT (event_id) DO NOTHING",
                        &parameters,
                    )
                    .await
                    .expect("insert");
            }
        }));
    }
    for worker in workers {
        worker.await.expect("a connection");
    }
    let rate = REQUESTS as f64 / started.elapsed().as_secs_f64();
    database.remove().await;
    rate
}

#[tokio::main]
async fn main() {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_rowhook"));
    println!();
    println!(
        "inbound benchmark (release build; fsync = on; {CLIENTS} keep-alive clients; 2 cores shared with PostgreSQL)"
    );
    let reference = straight_to_postgres().await;
    let (rate, mut times) = through_rowhook(&binary).await;
    times.sort_by(f64::total_cmp);
    println!("| measure | value |\n|---|---|");
    println!("| accepted requests/s, {REQUESTS} distinct ids, Basic + dedupe | {rate:.0} |");
    println!("| the same inserts straight to PostgreSQL, rows/s | {reference:.0} |");
    println!("|   through rowhook ÷ straight | {:.2} |", rate / reference);
    println!(
        "| answer time p50 / p99 (ms) | {:.2} / {:.2} |",
        percentile(&times, 0.50),
        percentile(&times, 0.99)
    );
}
