//! Values exactly as PostgreSQL's own `to_jsonb` gives them (CONTRACT §4) — domains,
//! nested domains, composites, nested composites, arrays of composites, 2-D arrays — but
//! numeric as a string and timestamptz in UTC, through both capture modes.

#[macro_use]
mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::receiver::Receiver;
use support::{Mode, Service, TestDatabase, rowhook, text};

const SCHEMA: &str = r#"
    CREATE DOMAIN small_count AS integer CHECK (VALUE >= 0);
    CREATE DOMAIN tiny_count AS small_count CHECK (VALUE < 100);
    CREATE DOMAIN amount AS numeric(12, 2);
    CREATE DOMAIN label AS text;
    CREATE TYPE pair AS (a integer, b text);
    CREATE TYPE nested AS (p pair, ps pair[], at timestamptz, price amount, n small_count);
    CREATE TABLE things (
        id integer PRIMARY KEY,
        count small_count, tiny tiny_count, price amount, name label,
        p pair, n nested, pairs pair[], grid integer[][], labels label[],
        counts small_count[], moment timestamptz, total numeric, flags boolean[],
        doc jsonb, nothing pair, empty_pair pair
    );"#;

const ROW: &str = r#"
    INSERT INTO things VALUES (
        1, 5, 3, 9.90, 'x "quoted"',
        ROW(7, 'seven'),
        ROW(ROW(1, 'a'), ARRAY[ROW(2, 'b, "c"')::pair], '2026-11-22 10:00:00+02', 1.50, 4),
        ARRAY[ROW(1, 'one')::pair, ROW(2, 't,w "o"')::pair, NULL],
        '{{1,2},{3,4}}', ARRAY['a', 'b c']::label[], ARRAY[1, 2]::small_count[],
        '2026-11-22 10:00:00.5+05:30', 12.345, '{t,f}', '{"k": [1, null]}',
        NULL, ROW(NULL, NULL)
    )"#;

async fn values_match_to_jsonb(mode: Mode) {
    let database = TestDatabase::create_in(mode).await;
    database.execute(SCHEMA).await;
    let receiver = Receiver::start().await;
    let config = database.write_config(&format!(
        "[delivery]\nretry = [\"0s\"]\n\n[models.thing]\ntable = \"things\"\n\n\
         [[webhooks]]\nname = \"things\"\nmodel = \"thing\"\nurl = \"{}\"\n",
        receiver.url("/things")
    ));
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    let service = Service::start(&database, &config).await;
    database.execute(ROW).await;
    let requests = receiver.wait_for(1, Duration::from_secs(30)).await;
    service.stop();
    let item = requests[0].json()["item"].clone();

    database.execute("SET TimeZone = 'UTC'").await;
    let reference: String = database
        .client
        .query_one("SELECT to_jsonb(t)::text FROM things t WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    let reference: Value = serde_json::from_str(&reference).unwrap();
    // PostgreSQL's numbers for numeric, and its own offsets for timestamptz...
    assert_eq!(reference["price"], json!(9.90));
    assert_eq!(reference["moment"], json!("2026-11-22T04:30:00.5+00:00"));
    // ...are rowhook's two exceptions: numeric as a string, timestamptz in UTC `Z`.
    let mut expected = reference;
    expected["price"] = json!("9.90");
    expected["total"] = json!("12.345");
    expected["n"]["price"] = json!("1.50");
    expected["moment"] = json!("2026-11-22T04:30:00.5Z");
    expected["n"]["at"] = json!("2026-11-22T08:00:00Z");
    assert_eq!(item, expected, "{mode:?}");
    assert_eq!(item["tiny"], json!(3), "a domain over a domain is a number");
    assert_eq!(item["n"]["ps"][0]["b"], json!("b, \"c\""));
    assert_eq!(item["grid"], json!([[1, 2], [3, 4]]));
    assert_eq!(item["empty_pair"], json!({"a": null, "b": null}));
}

in_both_modes!(values_match_to_jsonb);
