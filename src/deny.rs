//! The SSRF guard (`delivery.deny`, CONTRACT §12): address ranges delivery refuses to
//! connect to. Pure: which entry, if any, denies an address, and what an attempt whose
//! every address is denied reports. The HTTP client applies it to the addresses it is
//! about to connect to (after DNS), never to the URL's text.
//!
//! An IPv6 address that carries an IPv4 address — mapped (`::ffff:127.0.0.1`),
//! compatible (`::127.0.0.1`) or NAT64 (`64:ff9b::7f00:1`) — is judged as that IPv4
//! address too: connecting to it reaches (or, through NAT64, is translated to) the IPv4
//! host, so `::ffff:10.0.0.1` is as private as `10.0.0.1`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// A named group of ranges; each name is one config entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamedRange {
    /// This host: 127.0.0.0/8 and ::1, and the unspecified addresses 0.0.0.0 and ::,
    /// which Linux and macOS connect to this host as well.
    Loopback,
    /// RFC 1918 and unique local addresses: 10/8, 172.16/12, 192.168/16, fc00::/7, and
    /// the deprecated site-local fec0::/10 that some stacks still route.
    Private,
    /// 169.254/16 (cloud metadata services live at 169.254.169.254) and fe80::/10.
    LinkLocal,
    /// 0.0.0.0/8 ("this network") and ::.
    Unspecified,
    /// 224.0.0.0/4 and ff00::/8.
    Multicast,
    /// 100.64.0.0/10: carrier-grade NAT, often a provider's internal network.
    Shared,
}

impl NamedRange {
    pub const ALL: [NamedRange; 6] = [
        NamedRange::Loopback,
        NamedRange::Private,
        NamedRange::LinkLocal,
        NamedRange::Unspecified,
        NamedRange::Multicast,
        NamedRange::Shared,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NamedRange::Loopback => "loopback",
            NamedRange::Private => "private",
            NamedRange::LinkLocal => "link-local",
            NamedRange::Unspecified => "unspecified",
            NamedRange::Multicast => "multicast",
            NamedRange::Shared => "shared",
        }
    }

    fn networks(self) -> &'static [Network] {
        const LOOPBACK: [Network; 4] = [
            Network::v4(127, 0, 0, 0, 8),
            Network::v4(0, 0, 0, 0, 32),
            Network::v6(Ipv6Addr::LOCALHOST, 128),
            Network::v6(Ipv6Addr::UNSPECIFIED, 128),
        ];
        const PRIVATE: [Network; 5] = [
            Network::v4(10, 0, 0, 0, 8),
            Network::v4(172, 16, 0, 0, 12),
            Network::v4(192, 168, 0, 0, 16),
            Network::v6(Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7),
            Network::v6(Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10),
        ];
        const LINK_LOCAL: [Network; 2] = [
            Network::v4(169, 254, 0, 0, 16),
            Network::v6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10),
        ];
        const UNSPECIFIED: [Network; 2] = [
            Network::v4(0, 0, 0, 0, 8),
            Network::v6(Ipv6Addr::UNSPECIFIED, 128),
        ];
        const MULTICAST: [Network; 2] = [
            Network::v4(224, 0, 0, 0, 4),
            Network::v6(Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8),
        ];
        const SHARED: [Network; 1] = [Network::v4(100, 64, 0, 0, 10)];
        match self {
            NamedRange::Loopback => &LOOPBACK,
            NamedRange::Private => &PRIVATE,
            NamedRange::LinkLocal => &LINK_LOCAL,
            NamedRange::Unspecified => &UNSPECIFIED,
            NamedRange::Multicast => &MULTICAST,
            NamedRange::Shared => &SHARED,
        }
    }
}

/// A CIDR block: an address whose bits past `prefix` are zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Network {
    address: IpAddr,
    prefix: u8,
}

impl Network {
    const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Network {
        Network {
            address: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix,
        }
    }

    const fn v6(address: Ipv6Addr, prefix: u8) -> Network {
        Network {
            address: IpAddr::V6(address),
            prefix,
        }
    }

    /// An IPv4 block holds IPv4 addresses only, an IPv6 block IPv6 addresses only; the
    /// IPv4 form of an IPv6 address is tried by the caller. `self.address` is the
    /// block's first address (constants are written so, parsing checks it).
    fn contains(&self, address: IpAddr) -> bool {
        address.is_ipv4() == self.address.is_ipv4() && self.first_of(address) == self.address
    }

    /// The first address of the block of this prefix length that holds `address`.
    fn first_of(&self, address: IpAddr) -> IpAddr {
        let prefix = u32::from(self.prefix);
        match address {
            IpAddr::V4(address) => {
                let mask = u32::MAX.checked_shl(32 - prefix.min(32)).unwrap_or(0);
                IpAddr::V4(Ipv4Addr::from(u32::from(address) & mask))
            }
            IpAddr::V6(address) => {
                let mask = u128::MAX.checked_shl(128 - prefix.min(128)).unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(address) & mask))
            }
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}/{}", self.address, self.prefix)
    }
}

/// One entry of `delivery.deny`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenyRange {
    Named(NamedRange),
    Network(Network),
}

impl DenyRange {
    /// A name (`"private"`), a CIDR block (`"10.1.0.0/16"`, `"fd00:1::/32"`) or a single
    /// address (`"203.0.113.7"`).
    pub fn parse(text: &str) -> Result<DenyRange, DenyRangeError> {
        if let Some(named) = NamedRange::ALL
            .into_iter()
            .find(|named| named.as_str() == text)
        {
            return Ok(DenyRange::Named(named));
        }
        let (address_text, prefix_text) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let Ok(address) = address_text.parse::<IpAddr>() else {
            return Err(DenyRangeError::Unknown(text.to_string()));
        };
        let longest = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => longest,
            Some(prefix_text) => match prefix_text.parse::<u8>() {
                Ok(prefix) if prefix <= longest => prefix,
                _ => {
                    return Err(DenyRangeError::Prefix {
                        text: text.to_string(),
                        longest,
                    });
                }
            },
        };
        let network = Network { address, prefix };
        // Bits set past the prefix are almost always a typo for another block; say so
        // rather than guess which block was meant.
        if network.first_of(address) != address {
            return Err(DenyRangeError::HostBits {
                text: text.to_string(),
            });
        }
        Ok(DenyRange::Network(network))
    }

    fn contains(&self, address: IpAddr) -> bool {
        match self {
            DenyRange::Named(named) => named
                .networks()
                .iter()
                .any(|network| network.contains(address)),
            DenyRange::Network(network) => network.contains(address),
        }
    }
}

impl fmt::Display for DenyRange {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyRange::Named(named) => formatter.write_str(named.as_str()),
            DenyRange::Network(network) => network.fmt(formatter),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DenyRangeError {
    #[error(
        "unknown range {0:?}: expected loopback, private, link-local, unspecified, multicast, shared, an address or a CIDR block such as \"10.1.0.0/16\""
    )]
    Unknown(String),
    #[error("{text:?}: the prefix length must be a number from 0 to {longest}")]
    Prefix { text: String, longest: u8 },
    #[error(
        "{text:?} has address bits set past the prefix length; write the block's first address"
    )]
    HostBits { text: String },
}

/// `delivery.deny`: empty means no guard.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DenyList {
    ranges: Vec<DenyRange>,
}

impl DenyList {
    pub fn new(ranges: Vec<DenyRange>) -> DenyList {
        DenyList { ranges }
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn ranges(&self) -> &[DenyRange] {
        &self.ranges
    }

    /// The first entry that denies `address`, itself or the IPv4 address it carries.
    pub fn denying(&self, address: IpAddr) -> Option<DenyRange> {
        let embedded = embedded_ipv4(address).map(IpAddr::V4);
        self.ranges.iter().copied().find(|range| {
            range.contains(address) || embedded.is_some_and(|embedded| range.contains(embedded))
        })
    }

    /// `addresses` (what `host` resolved to) without the denied ones; an error naming
    /// the first denied address when none is left. An empty list is not denied: the
    /// client reports that the name did not resolve.
    pub fn allowed(
        &self,
        host: &str,
        addresses: Vec<SocketAddr>,
    ) -> Result<Vec<SocketAddr>, DeniedTarget> {
        let mut first_denied = None;
        let total = addresses.len();
        let allowed: Vec<SocketAddr> = addresses
            .into_iter()
            .filter(|address| match self.denying(address.ip()) {
                Some(range) => {
                    first_denied.get_or_insert((address.ip(), range));
                    false
                }
                None => true,
            })
            .collect();
        match first_denied {
            Some((address, range)) if allowed.is_empty() => Err(DeniedTarget {
                host: host.to_string(),
                address,
                range,
                addresses: total,
            }),
            _ => Ok(allowed),
        }
    }
}

#[cfg(test)]
impl DenyList {
    /// A list of entries the test knows to be valid.
    pub(crate) fn of(entries: &[&str]) -> DenyList {
        let ranges = entries
            .iter()
            .map(|entry| DenyRange::parse(entry).unwrap_or_else(|error| panic!("{error}")))
            .collect();
        DenyList::new(ranges)
    }
}

/// The IPv4 address an IPv6 address stands for, if it has one of the forms that reach an
/// IPv4 host: mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d` (but not `::` or `::1`,
/// which are IPv6's own) and NAT64 `64:ff9b::a.b.c.d`.
fn embedded_ipv4(address: IpAddr) -> Option<Ipv4Addr> {
    const NAT64: Network = Network::v6(Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96);
    let IpAddr::V6(address) = address else {
        return None;
    };
    if let Some(mapped) = address.to_ipv4_mapped() {
        return Some(mapped);
    }
    let bits = u128::from(address);
    // The low 32 bits, where every one of these forms keeps the IPv4 address.
    let low = Ipv4Addr::from(bits as u32);
    let is_compatible = bits >> 32 == 0 && bits > 1;
    (is_compatible || NAT64.contains(IpAddr::V6(address))).then_some(low)
}

/// Every address a target's host stood for was denied: the attempt fails as `denied`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct DeniedTarget {
    /// As written in the URL: a name, or the address itself.
    pub host: String,
    /// The first denied address.
    pub address: IpAddr,
    pub range: DenyRange,
    /// How many addresses the host stood for, all denied.
    pub addresses: usize,
}

impl fmt::Display for DeniedTarget {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let is_literal = self
            .host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok();
        if is_literal {
            write!(formatter, "address {}", self.address)?;
        } else {
            write!(formatter, "{} resolves to {}", self.host, self.address)?;
        }
        write!(
            formatter,
            ", which delivery.deny refuses (range {})",
            self.range
        )?;
        if self.addresses > 1 {
            write!(
                formatter,
                "; all {} of its addresses are denied",
                self.addresses
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "deny_tests.rs"]
mod tests;
