//! What the demo is made of: the shop schema, the configuration it runs rowhook with, the
//! changes it makes, and how its receiver's endpoints answer. Pure, so that the
//! configuration is tested to load and every step to add up.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Mutex;

use axum::http::StatusCode;
use rowhook::receive::ReceivedRequest;

/// The schema, from `sql/shop.sql`.
pub(crate) const SCHEMA: &str = include_str!("../../../sql/shop.sql");

/// The tables in [`SCHEMA`], for the story.
pub(crate) const TABLES: &str = "customers, orders, callback_requests, tasks";

/// The secret every demo webhook signs with and the receiver verifies with. Public on
/// purpose: it signs requests to a loopback receiver that lives as long as the demo.
pub(crate) const SECRET: &str = "whsec_cm93aG9vayBkZW1vIGtleTogbmV2ZXIgdXNlIGluIHByb2R1Y3Rpb24=";

pub(crate) const WAREHOUSE: &str = "order-to-warehouse";
pub(crate) const BILLING: &str = "order-paid-to-billing";
pub(crate) const CRM: &str = "callback-to-crm";
pub(crate) const CALL_CENTRE: &str = "task-to-call-centre";
/// The inbound endpoint the CRM sends tasks to.
pub(crate) const INBOUND_ENDPOINT: &str = "crm-tasks";

/// The receiver's path prefix for each webhook.
const ENDPOINTS: [(&str, &str); 4] = [
    ("/warehouse/", WAREHOUSE),
    ("/billing/", BILLING),
    ("/crm/", CRM),
    ("/call-centre/", CALL_CENTRE),
];

/// The webhook whose endpoint `target` (path and query) is.
pub(crate) fn webhook_for(target: &str) -> Option<&'static str> {
    ENDPOINTS
        .iter()
        .find(|(prefix, _)| target.starts_with(prefix))
        .map(|(_, webhook)| *webhook)
}

/// Where the generated configuration points.
pub(crate) struct Settings<'a> {
    /// The demo database (a libpq URL).
    pub database_url: &'a str,
    /// The name of the slot and of the publication.
    pub slot: &'a str,
    pub store: &'a Path,
    pub receiver: SocketAddr,
    /// Where rowhook's inbound endpoint listens.
    pub inbound: SocketAddr,
}

/// The whole configuration file: connection and store, then [`webhooks_text`].
pub(crate) fn config_text(settings: &Settings) -> String {
    format!(
        "# Written by `rowhook demo`; removed when the demo ends.\n\
         [source]\n\
         url = {url}\n\
         slot = {slot}\n\
         publication = {slot}\n\
         \n\
         [store]\n\
         path = {store}\n\
         \n\
         {webhooks}",
        url = toml_string(settings.database_url),
        slot = toml_string(settings.slot),
        store = toml_string(&settings.store.display().to_string()),
        webhooks = webhooks_text(settings.receiver, settings.inbound),
    )
}

/// The models, the retry schedule and the three webhooks: the part worth reading.
pub(crate) fn webhooks_text(receiver: SocketAddr, inbound: SocketAddr) -> String {
    let base = format!("http://{receiver}");
    format!(
        r#"[models.order]
table = "orders"

[models.callback]
table = "callback_requests"

[delivery]
retry = ["0s", "2s"]         # attempt at once; once more 2 s after a failure

[[webhooks]]                 # the full event envelope as JSON
name = "{WAREHOUSE}"
model = "order"
on = ["create", "update", "delete"]
url = "{base}/warehouse/orders/{{{{ item.id }}}}"
secret = "{SECRET}"

[[webhooks]]                 # paid orders only, with chosen fields
name = "{BILLING}"
model = "order"
on = ["update"]
columns = ["status"]
when = "item.status == 'paid'"
url = "{base}/billing/invoices"
fields = {{ order = "item.id", customer = "item.customer_id", amount = "item.total", paid_at = "item.updated_at" }}
secret = "{SECRET}"

[[webhooks]]                 # a form body written with Liquid
name = "{CRM}"
model = "callback"
on = ["create"]
url = "{base}/crm/callbacks"
format = "form"
body = "phone={{{{ item.phone | url_encode }}}}&name={{{{ item.name | url_encode }}}}&note={{{{ item.note | url_encode }}}}"
secret = "{SECRET}"

[models.task]
table = "tasks"

[[webhooks]]                 # tasks received from the CRM, sent on to the call centre
name = "{CALL_CENTRE}"
model = "task"
on = ["create"]
url = "{base}/call-centre/tasks"
secret = "{SECRET}"

[inbound]                    # rowhook receiving: signed tasks into the tasks table
listen = "{inbound}"

[[inbound.endpoints]]
name = "{INBOUND_ENDPOINT}"
secret = "{SECRET}"
table = "tasks"
columns = {{ event_id = "headers.webhook-id", title = "body.title", phone = "body.phone", received_at = "now" }}
dedupe = "event_id"
"#
    )
}

/// A TOML string holding `text` as it is: quoted, escaped, and with `${` written as
/// `$${` so that the loader does not read it as an environment variable.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.replace("${", "$${")).to_string()
}

/// One change the demo makes, and how many requests it causes.
pub(crate) struct Step {
    pub story: &'static str,
    pub sql: &'static str,
    /// Requests the receiver gets, failed attempts included.
    pub deliveries: usize,
}

pub(crate) const STEPS: [Step; 4] = [
    Step {
        story: "Ada signs up and orders tea and a mug, in one transaction.",
        sql: "BEGIN;\n\
              INSERT INTO customers (name, email) VALUES ('Ada Lovelace', 'ada@example.com');\n\
              INSERT INTO orders (customer_id, total, items) VALUES\n  \
              (1, 42.50, '[{\"sku\": \"TEA-01\", \"quantity\": 2}]'),\n  \
              (1, 19.90, '[{\"sku\": \"MUG-07\", \"quantity\": 1}]');\n\
              COMMIT;",
        // customers is no model: only the two orders are sent, to the warehouse.
        deliveries: 2,
    },
    Step {
        story: "Ada pays order 1.",
        sql: "UPDATE orders SET status = 'paid', updated_at = now() WHERE id = 1;",
        // The warehouse hears of the update; billing fails once, then gets it.
        deliveries: 3,
    },
    Step {
        story: "Ada asks to be called back.",
        sql: "INSERT INTO callback_requests (phone, name, note)\n\
              VALUES ('+44 20 7946 0018', 'Ada Lovelace', 'Order 1: deliver after 6 pm & ring twice?');",
        deliveries: 1,
    },
    Step {
        story: "Ada changes her mind about the mug: order 2 is deleted.",
        sql: "DELETE FROM orders WHERE id = 2;",
        deliveries: 1,
    },
];

/// How the receiver answers: billing fails each event's first attempt with 503, so the
/// demo shows a retry; everything else is accepted.
#[derive(Default)]
pub(crate) struct Answers {
    failed_once: Mutex<HashSet<String>>,
}

impl Answers {
    pub(crate) fn answer(&self, request: &ReceivedRequest) -> StatusCode {
        if webhook_for(&request.target) != Some(BILLING) {
            return StatusCode::OK;
        }
        let event = request.header("webhook-id").unwrap_or_default().to_string();
        let first_attempt = self
            .failed_once
            .lock()
            .map(|mut failed| failed.insert(event))
            .unwrap_or(false);
        if first_attempt {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(database_url: &str) -> String {
        config_text(&Settings {
            database_url,
            slot: "rowhook_demo_1",
            store: Path::new("/tmp/rowhook-demo/store"),
            receiver: "127.0.0.1:4000".parse().unwrap(),
            inbound: "127.0.0.1:4001".parse().unwrap(),
        })
    }

    #[test]
    fn the_configuration_loads_and_its_templates_compile() {
        let text = settings("postgres://postgres@127.0.0.1:5432/shop");
        let config = rowhook::config::parse(Path::new("rowhook.toml"), &text, &|_: &str| None)
            .unwrap_or_else(|errors| panic!("{errors}\n{text}"));
        let names: Vec<&str> = config
            .webhooks
            .iter()
            .map(|webhook| webhook.name.as_str())
            .collect();
        assert_eq!(names, [WAREHOUSE, BILLING, CRM, CALL_CENTRE]);
        let inbound = config.inbound.as_ref().expect("the inbound endpoint");
        assert_eq!(inbound.endpoints[0].name, INBOUND_ENDPOINT);
        assert_eq!(inbound.endpoints[0].dedupe.as_deref(), Some("event_id"));
        assert_eq!(config.source.slot, "rowhook_demo_1");
        assert_eq!(config.source.publication, "rowhook_demo_1");
        assert!(
            config
                .webhooks
                .iter()
                .all(|webhook| webhook.secret.as_deref() == Some(SECRET))
        );
        assert!(rowhook::route::Router::new(&config).is_ok());
    }

    #[test]
    fn urls_with_quotes_and_dollars_stay_as_they_are() {
        let url = r#"host=/tmp password='a"b${HOME}' dbname=shop"#;
        let text = settings(url);
        let config = rowhook::config::parse(Path::new("rowhook.toml"), &text, &|_: &str| None)
            .unwrap_or_else(|errors| panic!("{errors}\n{text}"));
        assert_eq!(config.source.url, url);
    }

    #[test]
    fn every_endpoint_names_its_webhook() {
        assert_eq!(webhook_for("/warehouse/orders/1"), Some(WAREHOUSE));
        assert_eq!(webhook_for("/billing/invoices"), Some(BILLING));
        assert_eq!(webhook_for("/crm/callbacks?x=1"), Some(CRM));
        assert_eq!(webhook_for("/elsewhere"), None);
    }

    #[test]
    fn billing_fails_each_event_once() {
        let answers = Answers::default();
        let request = |target: &str, event: &str| ReceivedRequest {
            received_at_ms: 0,
            method: "POST".into(),
            target: target.into(),
            headers: vec![("webhook-id".into(), event.into())],
            body: Vec::new(),
        };
        let billing = request("/billing/invoices", "evt_1");
        assert_eq!(answers.answer(&billing), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answers.answer(&billing), StatusCode::OK);
        let other_event = request("/billing/invoices", "evt_2");
        assert_eq!(
            answers.answer(&other_event),
            StatusCode::SERVICE_UNAVAILABLE
        );
        assert_eq!(
            answers.answer(&request("/warehouse/orders/1", "evt_3")),
            StatusCode::OK
        );
    }
}
