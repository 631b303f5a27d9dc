use std::path::Path;
use std::time::Duration;

use super::*;

#[test]
fn defaults() {
    let config = parsed(&with_webhook(""));
    assert_eq!(config.file, Path::new(FILE));
    assert_eq!(
        config.source.url,
        "postgres://rowhook:pa55@db.internal/shop?sslmode=require"
    );
    assert!(config.source.url_from_environment);
    assert_eq!(config.source.mode, SourceMode::Replication);
    assert_eq!(config.source.slot, "rowhook");
    assert_eq!(config.source.publication, "rowhook");
    assert_eq!(config.store.path, Path::new("data/rowhook"));
    assert_eq!(config.store.retention, Duration::from_secs(7 * 86_400));
    assert!(config.admin.is_none());
    let delivery = DeliveryConfig {
        timeout: Duration::from_secs(3),
        retry: vec![
            Duration::from_secs(5),
            Duration::from_secs(240),
            Duration::from_secs(480),
        ],
        event_id_header: "webhook-id".to_string(),
        concurrency: 256,
        rate: None,
        pause_after: None,
        ordering: Ordering::None,
        max_body: 10 * 1024 * 1024,
    };
    assert_eq!(config.delivery, delivery);
    assert_eq!(
        config.models["order"],
        ModelConfig {
            name: "order".to_string(),
            table: TableName::new("public", "orders"),
            relations: Default::default(),
        }
    );
    let webhook = &config.webhooks[0];
    assert_eq!(webhook.on, Action::ALL);
    assert!(webhook.active);
    assert_eq!(webhook.method, Method::Post);
    assert_eq!(webhook.format, Format::Json);
    assert_eq!(webhook.fields, None);
    assert_eq!(webhook.body, None);
    assert!(webhook.headers.is_empty() && webhook.secret_headers.is_empty());
    assert_eq!((&webhook.when, &webhook.columns), (&None, &None));
    assert_eq!(webhook.secret, None);
    assert_eq!(webhook.delivery, delivery);
}

#[test]
fn models_without_webhooks_are_fine() {
    let config = parsed(MINIMAL);
    assert!(config.webhooks.is_empty());
    assert_eq!(config.models.len(), 1);
}

#[test]
fn a_table_belongs_to_one_model() {
    assert_eq!(
        error(&format!(
            "{MINIMAL}\n[models.purchase]\ntable = \"public.Orders\"\n"
        )),
        "config/rowhook.toml: models.purchase.table: table public.orders is already \
         captured by model order"
    );
}

#[test]
fn environment_substitution_and_escape() {
    let config = parsed(
        &with_webhook(
            r#"url = "https://${WMS_HOST}/orders/{{ item.id }}"
body = "{\"price\": \"$${{ item.price }}\", \"literal\": \"$${WMS_HOST} costs $5\"}"
headers = { Authorization = "Bearer ${WMS_TOKEN}", X-Plain = "plain", X-Key = "${WMS_TOKEN}" }"#,
        )
        .replace("url = \"https://example.com/hook\"\n", ""),
    );
    let webhook = &config.webhooks[0];
    assert_eq!(webhook.url, "https://wms.example.com/orders/{{ item.id }}");
    assert_eq!(
        webhook.body.as_deref(),
        Some(r#"{"price": "${{ item.price }}", "literal": "${WMS_HOST} costs $5"}"#)
    );
    assert_eq!(
        webhook.headers[0],
        ("Authorization".to_string(), "Bearer wms-token".to_string())
    );
    assert_eq!(
        webhook.secret_headers.iter().collect::<Vec<_>>(),
        ["authorization", "x-key"]
    );
    assert!(webhook.is_secret_header("X-KEY") && !webhook.is_secret_header("x-plain"));
    let shown = format!("{webhook:?}");
    assert!(!shown.contains("wms-token"), "{shown}");
}

#[test]
fn full_configuration() {
    let text = r#"
[source]
url = "host=db.internal user=rowhook password='${WMS_TOKEN}' dbname=shop"
mode = "notify"
slot = "rowhook_2"
publication = "shop changes"

[store]
path = "/var/lib/rowhook"
retention = "36h"

[admin]
listen = "[::1]:9000"
token = "${ADMIN_TOKEN}"

[delivery]
timeout = "1500ms"
retry = ["0s", "1m"]
event_id_header = "X-Event-Id"
concurrency = 64

[models.order]
table = '"Sales"."Order.Items"'

[models.customer]
table = "CRM.Customers"

[[webhooks]]
name = "order-to-warehouse"
model = "order"
on = ["update", "create", "update"]
active = false
method = "put"
url = "https://wms.example.com/api/orders/{{ item.id }}"
format = "form"
fields = { serial = "item.serial_number", note = "Order {{ item.id }}", amount = "item.total" }
headers = { Authorization = "Bearer ${WMS_TOKEN}", X-Source = "rowhook" }
when = "item.status == 'paid'"
columns = ["status", "total", "status"]
secret = "${SIGNING_SECRET}"
timeout = "10s"
retry = ["5s"]
event_id_header = "X-Delivery"
concurrency = 4
ordering = "row"

[[webhooks]]
name = "customer_text"
model = "customer"
on = ["delete"]
method = "PATCH"
url = "{{ item.callback_url }}"
format = "text"
body = "customer {{ item.id }} deleted"
"#;
    let config = parsed(text);
    assert_eq!(config.source.mode, SourceMode::Notify);
    assert_eq!(config.source.slot, "rowhook_2");
    assert_eq!(config.source.publication, "shop changes");
    assert!(!format!("{:?}", config.source).contains("wms-token"));
    assert_eq!(config.store.path, Path::new("/var/lib/rowhook"));
    assert_eq!(config.store.retention, Duration::from_secs(36 * 3_600));
    let admin = config.admin.as_ref().unwrap();
    assert_eq!(admin.listen.to_string(), "[::1]:9000");
    assert_eq!(admin.token, "admin-token");
    assert!(!format!("{admin:?}").contains("admin-token"));
    let whole = format!("{config:?}");
    assert!(!whole.contains("admin-token") && !whole.contains("wms-token"));
    let global = DeliveryConfig {
        timeout: Duration::from_millis(1_500),
        retry: vec![Duration::ZERO, Duration::from_secs(60)],
        event_id_header: "x-event-id".to_string(),
        concurrency: 64,
        rate: None,
        pause_after: None,
        ordering: Ordering::None,
        max_body: 10 * 1024 * 1024,
    };
    assert_eq!(config.delivery, global);
    assert_eq!(
        config.models["order"].table,
        TableName::new("Sales", "Order.Items")
    );
    assert_eq!(
        config.models["customer"].table,
        TableName::new("crm", "customers")
    );
    assert_eq!(
        config
            .model_for_table(&TableName::new("crm", "customers"))
            .map(|model| model.name.as_str()),
        Some("customer")
    );

    let order = config.webhook("order-to-warehouse").unwrap();
    assert_eq!(order.model, "order");
    assert_eq!(order.on, [Action::Create, Action::Update]);
    assert!(!order.active);
    assert_eq!(order.method, Method::Put);
    assert_eq!(
        order.url,
        "https://wms.example.com/api/orders/{{ item.id }}"
    );
    assert_eq!(order.format, Format::Form);
    let fields: Vec<(&str, &str)> = order
        .fields
        .iter()
        .flatten()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect();
    assert_eq!(
        fields,
        [
            ("serial", "item.serial_number"),
            ("note", "Order {{ item.id }}"),
            ("amount", "item.total"),
        ]
    );
    assert_eq!(order.body, None);
    assert_eq!(
        order.headers,
        [
            ("Authorization".to_string(), "Bearer wms-token".to_string()),
            ("X-Source".to_string(), "rowhook".to_string()),
        ]
    );
    assert_eq!(order.secret_headers.len(), 1);
    assert_eq!(order.when.as_deref(), Some("item.status == 'paid'"));
    assert_eq!(
        order.columns,
        Some(vec!["status".to_string(), "total".to_string()])
    );
    assert_eq!(
        order.secret.as_deref(),
        Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    );
    assert!(!format!("{order:?}").contains("MfKQ9r8G"));
    assert_eq!(
        order.delivery,
        DeliveryConfig {
            timeout: Duration::from_secs(10),
            retry: vec![Duration::from_secs(5)],
            event_id_header: "x-delivery".to_string(),
            concurrency: 4,
            rate: None,
            pause_after: None,
            ordering: Ordering::Row,
            max_body: 10 * 1024 * 1024,
        }
    );

    let customer = &config.webhooks[1];
    assert_eq!(customer.on, [Action::Delete]);
    assert_eq!(
        (customer.method, customer.format),
        (Method::Patch, Format::Text)
    );
    assert_eq!(
        customer.body.as_deref(),
        Some("customer {{ item.id }} deleted")
    );
    assert_eq!(customer.delivery, global);
}

#[test]
fn parse_and_load_agree() {
    let directory = std::env::temp_dir().join(format!("rowhook-config-{}", std::process::id()));
    std::fs::create_dir_all(&directory).unwrap();
    let file = directory.join("rowhook.toml");
    let text = "[source]\nurl = \"postgres://db/shop\"\n[models.order]\ntable = \"orders\"\n";
    std::fs::write(&file, text).unwrap();
    let config = load(&file).unwrap();
    std::fs::remove_dir_all(&directory).unwrap();
    assert_eq!(config.file, file);
    assert!(!config.source.url_from_environment);
    assert_eq!(
        config.models["order"].table,
        TableName::new("public", "orders")
    );
}

#[test]
fn alert_targets_default_to_every_kind_and_every_webhook() {
    let text = format!(
        "{}\n[[webhooks]]\nname = \"quiet\"\nmodel = \"order\"\nurl = \"https://example.com/q\"\n\
         alerts = []\n\n[[alerts]]\nname = \"ops\"\nurl = \"https://chat.example.com/hook\"\n\n\
         [[alerts]]\nname = \"pager\"\nurl = \"https://pager.example.com/\"\n\
         on = [\"capture_down\"]\ncapture_down_after = \"5m\"\nretry = [\"0s\", \"10s\"]\n",
        super::with_webhook("")
    );
    let config = parse(Path::new(super::FILE), &text, &super::environment).unwrap();
    let ops = &config.alerts[0];
    assert_eq!(ops.on, AlertKind::ALL.into_iter().collect());
    assert_eq!(ops.capture_down_after, Duration::from_secs(60));
    assert_eq!(ops.queue_name(), "alert:ops");
    let pager = &config.alerts[1];
    assert_eq!(pager.on, [AlertKind::CaptureDown].into_iter().collect());
    assert_eq!(pager.capture_down_after, Duration::from_secs(300));
    assert_eq!(
        pager.delivery.retry,
        [Duration::ZERO, Duration::from_secs(10)]
    );
    assert_eq!(config.webhooks[0].alerts, ["ops", "pager"]);
    assert!(config.webhooks[1].alerts.is_empty());
}
