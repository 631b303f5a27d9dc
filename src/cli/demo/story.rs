//! What the demo prints: each change it makes, each request the receiver gets, then the
//! attempt log as `rowhook events list` and `events show` print it.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use rowhook::config::Config;
use rowhook::event::Status;
use rowhook::history::{self, EventSummary};
use rowhook::postgres;
use rowhook::receive::{self, JsonLayout, Receipt};
use rowhook::shutdown::Shutdown;
use rowhook::store::{EventQuery, EventStore};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio_postgres::Client;

use super::shop::{self, STEPS};
use crate::cli::events::{detail_text, summary_table};

/// How long one expected request may take to arrive (a retry comes 2 s after a failure).
const DELIVERY_WAIT: Duration = Duration::from_secs(30);
/// How long the store may take to record the last attempts after the receiver answered.
const SETTLE_WAIT: Duration = Duration::from_secs(15);
/// The headers worth a newcomer's attention; the rest are in `rowhook receive`'s output.
const SHOWN_HEADERS: [&str; 2] = ["webhook-id", "content-type"];

/// Everything the story waits on.
pub(crate) struct Story {
    pub receipts: UnboundedReceiver<Receipt>,
    pub receiver: SocketAddr,
    /// SIGINT or SIGTERM.
    pub interrupted: Shutdown,
    /// Fires when the service stops, which before the end means it failed.
    pub service_stopped: Shutdown,
}

impl Story {
    /// Makes each change and prints the requests it causes as they arrive.
    pub(crate) async fn make_changes(&mut self, client: &Client) -> anyhow::Result<()> {
        for (number, step) in STEPS.iter().enumerate() {
            say(format_args!(
                "\n{}. {}\n{}",
                number + 1,
                step.story,
                indented(step.sql, "     ")
            ));
            client
                .batch_execute(step.sql)
                .await
                .map_err(|error| anyhow!("{}", postgres::describe(&error)))
                .with_context(|| format!("step {} failed", number + 1))?;
            for _ in 0..step.deliveries {
                let receipt = self.next_receipt().await?;
                say(format_args!("{}", receipt_text(&receipt, self.receiver)));
            }
        }
        Ok(())
    }

    /// The CRM sends a signed task to rowhook's inbound endpoint, twice, as a sender
    /// that missed the first answer would: one row in `tasks`, which is a model, so
    /// rowhook sends it on to the call centre, once.
    pub(crate) async fn receive_a_task(&mut self, inbound: SocketAddr) -> anyhow::Result<()> {
        say(format_args!(
            "\n{}. The CRM sends a signed task to rowhook's inbound endpoint — twice, as a \
             sender that missed the first answer would.\n",
            STEPS.len() + 1
        ));
        let url = format!("http://{inbound}/in/{}", shop::INBOUND_ENDPOINT);
        let body = r#"{"title": "Call Ada about order 1", "phone": "+44 20 7946 0018"}"#;
        let id = "msg_crm_task_1";
        let client = reqwest::Client::new();
        for _ in 0..2 {
            let timestamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs() as i64;
            let signature = rowhook::signature::sign(shop::SECRET, id, timestamp, body.as_bytes())?;
            let answer = client
                .post(&url)
                .header("webhook-id", id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .with_context(|| format!("cannot reach rowhook's inbound endpoint {url}"))?;
            let status = answer.status();
            let text = answer.text().await.unwrap_or_default();
            say(format_args!(
                "     POST {url} (webhook-id: {id}) answered {} {}\n",
                status.as_u16(),
                text.trim()
            ));
        }
        say(format_args!(
            "     one row in tasks; the repeat added none (`rowhook inbound list` shows it as \
             duplicate). tasks is a model, so the row goes on:\n"
        ));
        let receipt = self.next_receipt().await?;
        say(format_args!("{}", receipt_text(&receipt, self.receiver)));
        Ok(())
    }

    async fn next_receipt(&mut self) -> anyhow::Result<Receipt> {
        tokio::select! {
            receipt = self.receipts.recv() => {
                receipt.ok_or_else(|| anyhow!("the demo's receiver stopped"))
            }
            () = self.interrupted.requested() => Err(interrupted()),
            () = self.service_stopped.requested() => {
                Err(anyhow!("rowhook stopped before delivering everything"))
            }
            () = tokio::time::sleep(DELIVERY_WAIT) => Err(anyhow!(
                "an expected request did not arrive within {} s",
                DELIVERY_WAIT.as_secs()
            )),
        }
    }

    /// Waits until no event is pending any more; returns them all, newest first.
    pub(crate) async fn wait_until_settled(
        &mut self,
        store: &dyn EventStore,
    ) -> anyhow::Result<Vec<EventSummary>> {
        let deadline = tokio::time::Instant::now() + SETTLE_WAIT;
        let all = EventQuery::default();
        loop {
            let events = history::list(store, &all, &rowhook::secret::Secrets::default())
                .await
                .context("cannot read the events")?
                .events;
            if events.iter().all(|event| event.status != Status::Pending) {
                return Ok(events);
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("events still pending after {} s", SETTLE_WAIT.as_secs());
            }
            tokio::select! {
                () = self.interrupted.requested() => return Err(interrupted()),
                () = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
    }
}

/// Writes to stdout. Unlike `print!`, which panics on a closed stdout
/// (`rowhook demo | head`) and so would skip the clean-up, it ignores write errors.
pub(crate) fn say(text: std::fmt::Arguments) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_fmt(text).and_then(|()| stdout.flush());
}

pub(crate) fn interrupted() -> anyhow::Error {
    anyhow!("interrupted")
}

/// One request as the story shows it: webhook, method, URL and answer on the first
/// line, then the event id, content type, signature verdict and body.
pub(crate) fn receipt_text(receipt: &Receipt, receiver: SocketAddr) -> String {
    let request = &receipt.request;
    let webhook = shop::webhook_for(&request.target).unwrap_or("unknown endpoint");
    let mut text = format!(
        "\n   → {webhook}: {} http://{receiver}{} answered {}",
        request.method, request.target, receipt.status
    );
    if receipt.status >= 300 {
        text.push_str(" (the demo's billing endpoint fails each first attempt)");
    }
    text.push('\n');
    let mut details = receive::header_lines(request, Some(&SHOWN_HEADERS));
    if let Some(check) = &receipt.signature {
        let _ = writeln!(details, "signature: {check}");
    }
    details.push_str(&receive::body_text(request, JsonLayout::TopLevelLines));
    text.push_str(&indented(&details, "     "));
    text
}

/// `rowhook events list` for every event, then `rowhook events show` for each event that
/// needed more than one attempt.
pub(crate) async fn attempt_log(
    events: &[EventSummary],
    store: &dyn EventStore,
    config: &Config,
) -> anyhow::Result<String> {
    let mut text = format!("\n$ rowhook events list\n{}", summary_table(events));
    for event in events.iter().filter(|event| event.attempts > 1) {
        let detail = history::detail(store, config, &event.id)
            .await
            .context("cannot read the attempts")?;
        let _ = write!(
            text,
            "\n$ rowhook events show {}\n{}",
            event.id,
            detail_text(&detail)
        );
    }
    Ok(text)
}

/// Each line of `text` behind `indent`; empty lines stay empty.
pub(crate) fn indented(text: &str, indent: &str) -> String {
    let mut result = String::new();
    for line in text.lines() {
        if !line.is_empty() {
            result.push_str(indent);
        }
        result.push_str(line);
        result.push('\n');
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use rowhook::receive::{ReceivedRequest, SignatureCheck};

    #[test]
    fn a_receipt_names_its_webhook_and_shows_what_matters() {
        let receipt = Receipt {
            request: ReceivedRequest {
                received_at_ms: 0,
                method: "POST".into(),
                target: "/billing/invoices".into(),
                headers: vec![
                    ("host".into(), "127.0.0.1:4000".into()),
                    ("content-type".into(), "application/json".into()),
                    ("webhook-id".into(), "evt_1_order-paid-to-billing".into()),
                ],
                body: br#"{"order":1,"amount":"42.50"}"#.to_vec(),
            },
            signature: Some(SignatureCheck::Valid),
            status: 503,
        };
        let text = receipt_text(&receipt, "127.0.0.1:4000".parse().unwrap());
        assert_eq!(
            text,
            "\n   → order-paid-to-billing: POST http://127.0.0.1:4000/billing/invoices answered 503 \
             (the demo's billing endpoint fails each first attempt)\n\
             \x20    webhook-id: evt_1_order-paid-to-billing\n\
             \x20    content-type: application/json\n\
             \x20    signature: valid\n\
             \x20    {\n\
             \x20      \"order\": 1,\n\
             \x20      \"amount\": \"42.50\"\n\
             \x20    }\n"
        );
    }

    #[test]
    fn indenting_leaves_empty_lines_empty() {
        assert_eq!(indented("a\n\nb", "  "), "  a\n\n  b\n");
    }
}
