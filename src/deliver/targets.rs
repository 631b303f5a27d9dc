//! What `rowhook check` says about delivery targets under `delivery.deny`: a warning for
//! each webhook or alert target whose host is, or resolves to, a denied address. Only a
//! warning: what a name resolves to at check time is not what it resolves to when an
//! attempt is made, and attempts are checked again then (CONTRACT §12).

use std::net::SocketAddr;

use reqwest::Url;

use crate::capture::Finding;
use crate::config::Config;
use crate::deliver::guard::{denied_literal, ignored_proxy_variables};
use crate::deny::DenyList;
use crate::route::has_markup;

/// The warnings for `config`'s targets. Host names are looked up only with
/// `resolve_names` (`check` without `--offline`); IP-literal hosts are always judged.
pub async fn check_targets(config: &Config, resolve_names: bool) -> Vec<Finding> {
    if config.deny.is_empty() {
        return Vec::new();
    }
    let mut findings = Vec::new();
    let proxies = ignored_proxy_variables(&|name| std::env::var(name).ok());
    if !proxies.is_empty() {
        findings.push(Finding::warning(format!(
            "delivery.deny is set, so {} is ignored: deliveries connect directly, so that the guard sees the addresses they connect to",
            proxies.join(", ")
        )));
    }
    let targets = config
        .webhooks
        .iter()
        .map(|webhook| (format!("webhook {:?}", webhook.name), &webhook.url))
        .chain(
            config
                .alerts
                .iter()
                .map(|alert| (format!("alert target {:?}", alert.name), &alert.url)),
        );
    for (target, url) in targets {
        // A templated URL's host is known only per event; attempts are checked then.
        if has_markup(url) {
            continue;
        }
        let Ok(url) = Url::parse(url) else {
            continue;
        };
        let warning = match denied_literal(&config.deny, &url) {
            Some(denied) => Some(format!("{denied}; its attempts will fail as denied")),
            None if resolve_names => resolved_warning(&config.deny, &url).await,
            None => None,
        };
        if let Some(warning) = warning {
            findings.push(Finding::warning(format!("{target}: {warning}")));
        }
    }
    findings
}

/// A name that does not resolve here says nothing about the guard, so it is not reported.
async fn resolved_warning(deny: &DenyList, url: &Url) -> Option<String> {
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await.ok()?.collect();
    denied_warning(deny, host, addresses)
}

/// The warning for `host`, which resolved to `addresses`: all denied (attempts fail), or
/// some (those are skipped).
fn denied_warning(deny: &DenyList, host: &str, addresses: Vec<SocketAddr>) -> Option<String> {
    let total = addresses.len();
    let first_denied = addresses
        .iter()
        .find_map(|address| Some((address.ip(), deny.denying(address.ip())?)));
    match deny.allowed(host, addresses) {
        Err(denied) => Some(format!("{denied}; its attempts will fail as denied")),
        Ok(allowed) => {
            let (address, range) = first_denied?;
            Some(format!(
                "{host} resolves to {address}, which delivery.deny refuses (range {range}), and to {} allowed address(es) of {total}: only those are connected to",
                allowed.len()
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn socket(text: &str) -> SocketAddr {
        SocketAddr::new(text.parse().unwrap(), 443)
    }

    #[test]
    fn hosts_with_denied_addresses_are_warned_about() {
        let deny = DenyList::of(&["private"]);
        assert_eq!(
            denied_warning(&deny, "crm.internal", vec![socket("10.0.0.7")]).as_deref(),
            Some(
                "crm.internal resolves to 10.0.0.7, which delivery.deny refuses (range private); its attempts will fail as denied"
            )
        );
        assert_eq!(
            denied_warning(
                &deny,
                "split.example",
                vec![socket("192.168.0.2"), socket("93.184.216.34")]
            )
            .as_deref(),
            Some(
                "split.example resolves to 192.168.0.2, which delivery.deny refuses (range private), and to 1 allowed address(es) of 2: only those are connected to"
            )
        );
        assert_eq!(
            denied_warning(&deny, "public.example", vec![socket("93.184.216.34")]),
            None
        );
    }
}
