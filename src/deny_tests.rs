//! Addresses here are data only: nothing connects to them.

use std::net::{IpAddr, SocketAddr};

use super::*;

fn address(text: &str) -> IpAddr {
    text.parse().unwrap()
}

fn denying(entries: &[&str], text: &str) -> Option<String> {
    DenyList::of(entries)
        .denying(address(text))
        .map(|range| range.to_string())
}

#[test]
fn each_name_covers_its_ipv4_and_ipv6_ranges() {
    let cases = [
        ("loopback", "127.0.0.1"),
        ("loopback", "127.255.255.254"),
        ("loopback", "0.0.0.0"),
        ("loopback", "::1"),
        ("loopback", "::"),
        ("private", "10.0.0.1"),
        ("private", "10.255.255.255"),
        ("private", "172.16.0.1"),
        ("private", "172.31.255.255"),
        ("private", "192.168.1.1"),
        ("private", "fc00::1"),
        ("private", "fd12:3456::1"),
        ("private", "fec0::1"),
        ("link-local", "169.254.169.254"),
        ("link-local", "169.254.0.1"),
        ("link-local", "fe80::1"),
        ("link-local", "febf::1"),
        ("unspecified", "0.0.0.0"),
        ("unspecified", "0.1.2.3"),
        ("unspecified", "::"),
        ("multicast", "224.0.0.1"),
        ("multicast", "239.255.255.255"),
        ("multicast", "ff02::1"),
        ("shared", "100.64.0.1"),
        ("shared", "100.127.255.255"),
    ];
    for (name, text) in cases {
        assert_eq!(denying(&[name], text).as_deref(), Some(name), "{text}");
    }
}

#[test]
fn addresses_just_outside_each_range_are_allowed() {
    let all = [
        "loopback",
        "private",
        "link-local",
        "unspecified",
        "multicast",
        "shared",
    ];
    for text in [
        "128.0.0.1",
        "1.0.0.0",
        "11.0.0.1",
        "172.15.255.255",
        "172.32.0.0",
        "192.167.255.255",
        "192.169.0.0",
        "169.253.255.255",
        "169.255.0.0",
        "100.63.255.255",
        "100.128.0.0",
        "223.255.255.255",
        "240.0.0.1",
        "93.184.216.34",
        "100::1",
        "fbff::1",
        "fe00::1",
        "fe7f::1",
        "2001:db8::1",
        "2606:4700::1111",
    ] {
        assert_eq!(denying(&all, text), None, "{text}");
    }
}

#[test]
fn ipv6_forms_that_carry_an_ipv4_address_are_judged_by_it() {
    for text in [
        "::ffff:127.0.0.1",
        "::ffff:7f00:1",
        "::127.0.0.1",
        "64:ff9b::127.0.0.1",
    ] {
        assert_eq!(
            denying(&["loopback"], text).as_deref(),
            Some("loopback"),
            "{text}"
        );
    }
    assert_eq!(
        denying(&["private"], "::ffff:10.1.2.3").as_deref(),
        Some("private")
    );
    assert_eq!(
        denying(&["link-local"], "::ffff:169.254.169.254").as_deref(),
        Some("link-local")
    );
    assert_eq!(
        denying(&["10.1.0.0/16"], "::ffff:10.1.9.9").as_deref(),
        Some("10.1.0.0/16")
    );
    // A public IPv4 address in any of these forms stays allowed.
    assert_eq!(denying(&["loopback", "private"], "::ffff:8.8.8.8"), None);
    assert_eq!(embedded_ipv4(address("::1")), None);
    assert_eq!(embedded_ipv4(address("::")), None);
    assert_eq!(embedded_ipv4(address("2001:db8::7f00:1")), None);
    assert_eq!(embedded_ipv4(address("127.0.0.1")), None);
}

#[test]
fn cidr_blocks_and_single_addresses_match_exactly_their_span() {
    assert_eq!(
        denying(&["10.1.0.0/16"], "10.1.255.255").as_deref(),
        Some("10.1.0.0/16")
    );
    assert_eq!(denying(&["10.1.0.0/16"], "10.2.0.0"), None);
    assert_eq!(
        denying(&["203.0.113.7"], "203.0.113.7").as_deref(),
        Some("203.0.113.7/32")
    );
    assert_eq!(denying(&["203.0.113.7"], "203.0.113.8"), None);
    assert_eq!(
        denying(&["2001:db8::/32"], "2001:db8:ffff::1").as_deref(),
        Some("2001:db8::/32")
    );
    assert_eq!(denying(&["2001:db8::/32"], "2001:db9::1"), None);
    // /0 is everything of its family, and only of its family.
    assert!(denying(&["0.0.0.0/0"], "93.184.216.34").is_some());
    assert_eq!(denying(&["0.0.0.0/0"], "2001:db8::1"), None);
    assert!(denying(&["::/0"], "2001:db8::1").is_some());
}

#[test]
fn the_first_matching_entry_is_named() {
    assert_eq!(
        denying(&["unspecified", "loopback"], "0.0.0.0").as_deref(),
        Some("unspecified")
    );
    assert_eq!(
        denying(&["loopback", "unspecified"], "0.0.0.0").as_deref(),
        Some("loopback")
    );
}

#[test]
fn mistaken_entries_are_refused_with_the_reason() {
    assert_eq!(
        DenyRange::parse("privat"),
        Err(DenyRangeError::Unknown("privat".into()))
    );
    assert!(matches!(
        DenyRange::parse("Loopback"),
        Err(DenyRangeError::Unknown(_))
    ));
    assert!(matches!(
        DenyRange::parse("10.0.0.0/33"),
        Err(DenyRangeError::Prefix { longest: 32, .. })
    ));
    assert!(matches!(
        DenyRange::parse("fc00::/129"),
        Err(DenyRangeError::Prefix { longest: 128, .. })
    ));
    assert!(matches!(
        DenyRange::parse("10.0.0.0/x"),
        Err(DenyRangeError::Prefix { .. })
    ));
    assert!(matches!(
        DenyRange::parse("10.1.2.3/16"),
        Err(DenyRangeError::HostBits { .. })
    ));
    assert!(matches!(
        DenyRange::parse("10.0.0/8"),
        Err(DenyRangeError::Unknown(_))
    ));
    let message = DenyRange::parse("privat").unwrap_err().to_string();
    assert!(
        message.contains("loopback, private, link-local"),
        "{message}"
    );
}

fn socket(text: &str) -> SocketAddr {
    SocketAddr::new(address(text), 443)
}

#[test]
fn denied_addresses_are_dropped_and_the_rest_kept() {
    let deny = DenyList::of(&["private", "loopback"]);
    let allowed = deny
        .allowed(
            "mixed.example",
            vec![socket("10.0.0.5"), socket("93.184.216.34"), socket("::1")],
        )
        .unwrap();
    assert_eq!(allowed, vec![socket("93.184.216.34")]);
    assert_eq!(deny.allowed("nothing.example", vec![]), Ok(vec![]));
    assert_eq!(
        DenyList::default().allowed("any.example", vec![socket("127.0.0.1")]),
        Ok(vec![socket("127.0.0.1")])
    );
}

#[test]
fn a_host_with_only_denied_addresses_is_refused_with_a_clear_text() {
    let deny = DenyList::of(&["private", "loopback"]);
    let denied = deny
        .allowed("localhost", vec![socket("::1"), socket("127.0.0.1")])
        .unwrap_err();
    assert_eq!(denied.address, address("::1"));
    assert_eq!(denied.range, DenyRange::Named(NamedRange::Loopback));
    assert_eq!(
        denied.to_string(),
        "localhost resolves to ::1, which delivery.deny refuses (range loopback); all 2 of its addresses are denied"
    );
    let literal = deny
        .allowed("[::ffff:a00:1]", vec![socket("::ffff:10.0.0.1")])
        .unwrap_err();
    assert_eq!(
        literal.to_string(),
        "address ::ffff:10.0.0.1, which delivery.deny refuses (range private)"
    );
}
