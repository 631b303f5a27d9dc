//! The SSRF guard (`delivery.deny`, CONTRACT §12) as the HTTP client applies it.
//!
//! It sits in DNS resolution, so that what is checked is exactly the list of addresses
//! the connector then dials: a name that resolves to a public address when checked and
//! to a private one a moment later (DNS rebinding) is still caught, because every new
//! connection resolves afresh through here and pooled connections were made through
//! here. reqwest calls no resolver for IP-literal hosts, so the client checks those
//! itself before sending ([`denied_literal`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Host;

use crate::deny::{DeniedTarget, DenyList};

/// The environment variables reqwest takes a proxy from. Through a proxy the proxy
/// resolves the target, and the guard would see only the proxy's address.
const PROXY_VARIABLES: [&str; 6] = [
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// The system resolver (getaddrinfo, like reqwest's default), less the denied addresses.
pub(super) struct GuardedResolver {
    pub(super) deny: Arc<DenyList>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let deny = Arc::clone(&self.deny);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: the connector puts the URL's port (or the scheme's) in its place.
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed = deny.allowed(&host, addresses)?;
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Why `url` may not be sent, when its host is an IP address in a denied range. The
/// URL parser has already normalised the other spellings of an address (`0x7f.1`,
/// `2130706433`, `[::ffff:127.0.0.1]`) into the address itself.
pub(super) fn denied_literal(deny: &DenyList, url: &Url) -> Option<DeniedTarget> {
    let address = match url.host()? {
        Host::Ipv4(address) => IpAddr::V4(address),
        Host::Ipv6(address) => IpAddr::V6(address),
        Host::Domain(_) => return None,
    };
    deny.allowed(url.host_str()?, vec![SocketAddr::new(address, 0)])
        .err()
}

/// The proxy variables set in `environment`, which a client with a deny list ignores.
pub(super) fn ignored_proxy_variables(
    environment: &dyn Fn(&str) -> Option<String>,
) -> Vec<&'static str> {
    PROXY_VARIABLES
        .into_iter()
        .filter(|name| environment(name).is_some_and(|value| !value.trim().is_empty()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied(entries: &[&str], url: &str) -> Option<String> {
        denied_literal(&DenyList::of(entries), &Url::parse(url).unwrap())
            .map(|denied| denied.to_string())
    }

    #[test]
    fn literal_hosts_are_judged_in_every_spelling() {
        for url in [
            "http://127.0.0.1:8080/hook",
            "http://127.1/hook",
            "http://0x7f.0.0.1/hook",
            "http://2130706433/hook",
            "http://[::1]/hook",
            "http://[::ffff:127.0.0.1]/hook",
            "https://[0:0:0:0:0:ffff:7f00:1]:8443/hook",
        ] {
            let text = denied(&["loopback"], url);
            assert!(
                text.as_deref()
                    .is_some_and(|text| text.contains("range loopback")),
                "{url}: {text:?}"
            );
        }
        assert_eq!(
            denied(&["link-local"], "http://169.254.169.254/latest/meta-data").as_deref(),
            Some("address 169.254.169.254, which delivery.deny refuses (range link-local)")
        );
    }

    #[test]
    fn names_and_allowed_addresses_are_left_to_the_resolver() {
        assert_eq!(denied(&["loopback"], "http://localhost:8080/hook"), None);
        assert_eq!(denied(&["loopback"], "http://93.184.216.34/hook"), None);
        assert_eq!(denied(&["private"], "http://127.0.0.1/hook"), None);
        assert_eq!(denied(&[], "http://127.0.0.1/hook"), None);
    }

    #[test]
    fn set_proxy_variables_are_named() {
        let environment = |name: &str| match name {
            "https_proxy" => Some("http://proxy.internal:3128".to_string()),
            "HTTP_PROXY" => Some(" ".to_string()),
            _ => None,
        };
        assert_eq!(ignored_proxy_variables(&environment), ["https_proxy"]);
        assert!(ignored_proxy_variables(&|_| None).is_empty());
    }
}
