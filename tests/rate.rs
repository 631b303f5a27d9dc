//! `rate` (CONTRACT §9), benchmark-style: 300 events of a webhook limited to 100/s
//! reach the receiver over about three seconds, while a webhook without a rate takes
//! them at once. Figures are printed; the assertions keep a generous tolerance.

mod support;

use std::time::Duration;

use support::receiver::Receiver;
use support::{Service, TestDatabase, rowhook, text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_spaces_attempts_and_leaves_other_webhooks_alone() {
    let database = TestDatabase::create().await;
    database
        .execute("CREATE TABLE orders (id integer PRIMARY KEY, status text)")
        .await;
    let receiver = Receiver::start().await;
    let config = database.write_config(&format!(
        "[delivery]\nretry = [\"0s\"]\n\n[models.order]\ntable = \"orders\"\n\n\
         [[webhooks]]\nname = \"limited\"\nmodel = \"order\"\nurl = \"{}\"\nrate = \"100/s\"\n\n\
         [[webhooks]]\nname = \"free\"\nmodel = \"order\"\nurl = \"{}\"\n",
        receiver.url("/limited"),
        receiver.url("/free"),
    ));
    let setup = rowhook(&config, &["setup"]);
    assert!(setup.status.success(), "{}", text(&setup.stderr));
    let service = Service::start(&database, &config).await;
    database
        .execute("INSERT INTO orders SELECT n, 'new' FROM generate_series(1, 300) n")
        .await;
    let requests = receiver.wait_for(600, Duration::from_secs(60)).await;
    service.stop();
    let span = |target: &str| {
        let times: Vec<_> = requests
            .iter()
            .filter(|request| request.target == target)
            .map(|request| request.at)
            .collect();
        assert_eq!(times.len(), 300, "{target}");
        *times.iter().max().unwrap() - *times.iter().min().unwrap()
    };
    let limited = span("/limited");
    let free = span("/free");
    println!(
        "300 events at rate = \"100/s\" arrived over {limited:?}; without a rate over {free:?}"
    );
    assert!(
        limited >= Duration::from_millis(2_500),
        "the rate spaces attempts: {limited:?}"
    );
    assert!(
        free < limited,
        "a webhook without a rate is not held back: {free:?}"
    );
}
