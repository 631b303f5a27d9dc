use super::*;

fn parsed(text: &str) -> DatabaseUrl {
    parse(text).unwrap()
}

#[test]
fn full_url() {
    let url = parsed(
        "postgresql://app%40corp:p%40ss%3Aw%2Frd@db.example.com:6543/shop%20db\
         ?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=rowhook-test\
         &connect_timeout=10&target_session_attrs=read-write",
    );
    assert_eq!(url.host, Host::Tcp("db.example.com".to_string()));
    assert_eq!(url.port, 6543);
    assert_eq!(url.user, "app@corp");
    assert_eq!(url.password.as_deref(), Some("p@ss:w/rd"));
    assert_eq!(url.dbname, "shop db");
    assert_eq!(url.sslmode, SslMode::VerifyFull);
    assert_eq!(url.sslrootcert, Some(PathBuf::from("/etc/ca.pem")));
    assert_eq!(url.application_name.as_deref(), Some("rowhook-test"));
    assert_eq!(url.connect_timeout, Some(Duration::from_secs(10)));
}

#[test]
fn defaults() {
    for text in ["postgres://", "postgresql:///", "host=localhost"] {
        let url = parsed(text);
        assert_eq!(url.host, Host::Tcp("localhost".to_string()), "{text}");
        assert_eq!(url.port, 5432);
        assert_eq!(url.user, "postgres");
        assert_eq!(url.password, None);
        assert_eq!(url.dbname, "postgres");
        assert_eq!(url.sslmode, SslMode::Prefer);
        assert_eq!(url.connect_timeout, None);
    }
    assert_eq!(parsed("postgres://alice@db").dbname, "alice");
}

#[test]
fn ipv6_and_unix_socket_hosts() {
    let url = parsed("postgres://u@[::1]:5433/d");
    assert_eq!((url.host, url.port), (Host::Tcp("::1".to_string()), 5433));
    assert_eq!(parsed("postgres://[fe80::1]/d").port, 5432);
    let socket = Host::Unix(PathBuf::from("/var/run/postgresql"));
    assert_eq!(
        parsed("postgres://%2Fvar%2Frun%2Fpostgresql/d").host,
        socket
    );
    assert_eq!(
        parsed("postgres:///d?host=/var/run/postgresql").host,
        socket
    );
    assert_eq!(parsed("host=/var/run/postgresql dbname=d").host, socket);
    let zoned = parsed("postgres://[fe80::1%25eth0]:6000/d");
    assert_eq!(zoned.host, Host::Tcp("fe80::1%eth0".to_string()));
    assert_eq!(
        zoned.masked(),
        "postgres://postgres@[fe80::1%25eth0]:6000/d"
    );
}

#[test]
fn system_roots_mean_verify_full() {
    let url = parsed("postgres://h/d?sslrootcert=system");
    assert_eq!((url.sslmode, url.sslrootcert), (SslMode::VerifyFull, None));
    assert_eq!(
        parse("postgres://h/d?sslrootcert=system&sslmode=require"),
        Err(DatabaseUrlError::SystemRootsNeedVerifyFull)
    );
}

#[test]
fn later_parameters_win() {
    let url = parsed("postgres://u:p@h:1/d?port=2&user=v&dbname=e&password=q");
    assert_eq!(
        (url.port, url.user.as_str(), url.dbname.as_str()),
        (2, "v", "e")
    );
    assert_eq!(url.password.as_deref(), Some("q"));
    let url = parsed("postgres://h/?fallback_application_name=a");
    assert_eq!(url.application_name.as_deref(), Some("a"));
}

#[test]
fn keyword_value_strings() {
    let url = parsed(
        r"host=db.local port = 6000 user=x password='a b\'c\\' dbname=y sslmode=require
          keepalives=1 connect_timeout=1",
    );
    assert_eq!(url.host, Host::Tcp("db.local".to_string()));
    assert_eq!(url.port, 6000);
    assert_eq!(url.user, "x");
    assert_eq!(url.password.as_deref(), Some(r"a b'c\"));
    assert_eq!(url.dbname, "y");
    assert_eq!(url.sslmode, SslMode::Require);
    // libpq's minimum.
    assert_eq!(url.connect_timeout, Some(Duration::from_secs(2)));
    assert_eq!(parsed("password=x connect_timeout=0").connect_timeout, None);
    assert_eq!(parsed("password=''").password.as_deref(), Some(""));
}

#[test]
fn rejects_what_cannot_be_honoured() {
    use DatabaseUrlError::*;
    let cases = [
        ("", Empty),
        ("   ", Empty),
        ("mysql://u@h/d", Scheme("mysql".to_string())),
        ("localhost", Unrecognized),
        ("postgres://u:p%zz@h/d", PercentEncoding("password")),
        ("postgres://u:p%ff@h/d", PercentEncoding("password")),
        ("postgres://h:port/d", Port),
        ("postgres://h:0/d", Port),
        ("postgres://h:70000/d", Port),
        ("port=x", Port),
        ("postgres://a:1,b:2/d", MultipleHosts),
        ("host=a,b", MultipleHosts),
        ("postgres://[::1/d", Ipv6),
        ("postgres://h/d?sslmode", MissingEquals),
        ("host=h password=a b", MissingEquals),
        (
            "host=h password='a b",
            UnterminatedQuote("password".to_string()),
        ),
        (
            "postgres://h/d?colour=red",
            UnknownParameter("colour".to_string()),
        ),
    ];
    for (text, error) in cases {
        assert_eq!(parse(text), Err(error), "{text:?}");
    }
    let unsupported = |text: &str| matches!(parse(text), Err(Unsupported { .. }));
    assert!(unsupported("postgres://h/d?options=-c%20x=y"));
    assert!(unsupported("postgres://h/d?sslcert=/c.pem"));
    assert!(unsupported("postgres://h/d?sslmode=allow"));
    assert!(unsupported("postgres://h/d?channel_binding=require"));
    assert!(!unsupported("postgres://h/d?channel_binding=prefer"));
    assert_eq!(
        parse("postgres://h/d?sslmode=strict")
            .unwrap_err()
            .to_string(),
        "invalid sslmode \"strict\": expected disable, prefer, require, verify-ca or verify-full"
    );
    assert_eq!(
        parse("postgres://h/d?options=x").unwrap_err().to_string(),
        "connection parameter options is not supported: server options are not passed on"
    );
}

#[test]
fn errors_never_show_the_password() {
    for text in [
        "postgres://u:hunter2%zz@h/d",
        "postgres://u:hunter2/x@h/d",
        "postgres://u:hunter2@h:x/d",
        "user=u password=hunter2 port=x",
        "password='hunter2",
        "password=hunter 2",
    ] {
        let message = parse(text).unwrap_err().to_string();
        assert!(!message.contains("hunter"), "{text:?} gave {message:?}");
    }
}

#[test]
fn masked_shows_everything_but_the_password() {
    let url = parsed("postgres://app:s3cret@db:6543/shop?sslmode=require&connect_timeout=5");
    assert_eq!(
        url.masked(),
        "postgres://app:••••@db:6543/shop?sslmode=require&connect_timeout=5"
    );
    assert!(!format!("{url:?}").contains("s3cret"));
    assert_eq!(
        parsed("host=/tmp user=a dbname=c").masked(),
        "postgres://a@:5432/c?host=%2Ftmp"
    );
    assert_eq!(
        parsed("postgres://[::1]/d").masked(),
        "postgres://postgres@[::1]:5432/d"
    );
    assert_eq!(parse(&url.masked()).map(|again| again.port), Ok(6543));
}

// Found by the `database_url` fuzz target: a host with a colon was shown in brackets
// with its `/`, `]` or `?` as they are, so the display form did not parse back.
#[test]
fn masked_hosts_with_a_colon_read_back() {
    for text in [
        "host=ll:///",
        "host=a:b]c",
        "host=x:y?z",
        "postgres://\u{fffd}fe80::1%25eth0]:6000/d",
    ] {
        let url = parsed(text);
        let masked = url.masked();
        assert_eq!(
            parse(&masked).map(|again| again.host),
            Ok(url.host),
            "{masked}"
        );
    }
    assert_eq!(
        parsed("host=ll:///").masked(),
        "postgres://postgres@[ll:%2F%2F%2F]:5432/postgres"
    );
}
