//! The hand-built replication connection: every password method, TLS modes, and the
//! errors a user sees when logging in goes wrong.

mod support;

use rowhook::capture::replication::{ConnectionError, ReplicationConnection};
use rowhook::postgres::DatabaseUrl;
use support::require_env;

fn port() -> String {
    let url = require_env("ROWHOOK_TEST_DATABASE_URL");
    let (_, rest) = url.rsplit_once(':').expect("port in URL");
    rest.split('/').next().expect("port").to_string()
}

async fn identify(url: &str) -> Result<String, ConnectionError> {
    let parsed = DatabaseUrl::parse(url).expect("URL parses");
    let mut connection = ReplicationConnection::connect(&parsed, "rowhook test").await?;
    let system = connection.simple_query("IDENTIFY_SYSTEM").await?;
    let position = system.first("xlogpos").unwrap_or_default().to_string();
    connection.terminate().await;
    Ok(position)
}

#[tokio::test]
async fn every_password_method_logs_in() {
    let port = port();
    for (user, password) in [
        ("rowhook_scram", "scram%20secret"),
        ("rowhook_md5", "md5%20secret"),
        ("rowhook_cleartext", "clear%20secret"),
    ] {
        let url = format!("postgres://{user}:{password}@127.0.0.1:{port}/postgres?sslmode=disable");
        let position = identify(&url)
            .await
            .unwrap_or_else(|error| panic!("{user}: {error}"));
        assert!(
            position.contains('/'),
            "{user}: IDENTIFY_SYSTEM answered {position:?}"
        );
    }
}

#[tokio::test]
async fn a_wrong_password_is_reported_by_the_server() {
    let url = format!(
        "postgres://rowhook_scram:wrong@127.0.0.1:{}/postgres?sslmode=disable",
        port()
    );
    let error = identify(&url).await.expect_err("wrong password refused");
    assert_eq!(error.server_code(), Some("28P01"));
    assert!(
        error
            .to_string()
            .contains("password authentication failed for user \"rowhook_scram\""),
        "{error}"
    );
    assert!(
        !error.to_string().contains("wrong"),
        "the password is never shown"
    );
}

#[tokio::test]
async fn a_missing_password_is_reported_before_sending_anything() {
    let url = format!(
        "postgres://rowhook_md5@127.0.0.1:{}/postgres?sslmode=disable",
        port()
    );
    let error = identify(&url).await.expect_err("no password");
    assert!(matches!(error, ConnectionError::PasswordMissing), "{error}");
}

#[tokio::test]
async fn tls_modes() {
    let port = port();
    let root = require_env("ROWHOOK_TEST_ROOT_CERT");
    // rowhook_tls may only log in over TLS (hostssl), so success proves encryption.
    let require =
        format!("postgres://rowhook_tls:tls%20secret@127.0.0.1:{port}/postgres?sslmode=require");
    identify(&require).await.expect("sslmode=require");
    let verified = format!(
        "postgres://rowhook_tls:tls%20secret@localhost:{port}/postgres?sslmode=verify-full&sslrootcert={root}"
    );
    identify(&verified)
        .await
        .expect("sslmode=verify-full with the server's certificate");
    let chain_only = format!(
        "postgres://rowhook_tls:tls%20secret@127.0.0.1:{port}/postgres?sslmode=verify-ca&sslrootcert={root}"
    );
    identify(&chain_only).await.expect("sslmode=verify-ca");

    // A self-signed certificate is not trusted by the system's roots.
    let untrusted = format!(
        "postgres://rowhook_tls:tls%20secret@localhost:{port}/postgres?sslmode=verify-full"
    );
    let error = identify(&untrusted)
        .await
        .expect_err("untrusted certificate refused");
    assert!(
        matches!(
            error,
            ConnectionError::TlsHandshake { .. } | ConnectionError::Tls(_)
        ),
        "{error}"
    );
    // Without TLS, the hostssl-only role is refused.
    let plain =
        format!("postgres://rowhook_tls:tls%20secret@127.0.0.1:{port}/postgres?sslmode=disable");
    let error = identify(&plain)
        .await
        .expect_err("plain connection refused");
    assert_eq!(error.server_code(), Some("28000"), "{error}");
}

#[tokio::test]
async fn a_closed_port_is_a_clear_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let error = identify(&format!("postgres://postgres@127.0.0.1:{port}/postgres"))
        .await
        .expect_err("nothing listens");
    assert!(
        error
            .to_string()
            .starts_with(&format!("cannot connect to 127.0.0.1:{port}: ")),
        "{error}"
    );
}
