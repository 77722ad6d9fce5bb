//! Where the server may connect on behalf of an API caller: the destinations of HTTPS
//! rotation hooks.
//!
//! A hook URL is chosen by whoever may configure a secret's rotation, and the server calls
//! it from inside the network it runs in. Left unchecked, that is a server-side request
//! forgery: `https://169.254.169.254/...` reaches a cloud's instance metadata, a private
//! address reaches internal services, and loopback reaches the server's own neighbours. So
//! a hook may reach only public addresses, and the networks the server's operator
//! allow-lists (`writ server --hook-allow-net CIDR`). The check is made on every address a
//! host name resolves to, at connection time ([`GuardedResolver`]), so a name that
//! re-resolves to a forbidden address (DNS rebinding) is refused too.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

pub use ipnet::IpNet;

/// The networks hooks may reach although they are not public.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookNetworks {
    allowed: Vec<IpNet>,
}

impl HookNetworks {
    /// Public addresses, and `allowed`.
    pub fn new(allowed: Vec<IpNet>) -> HookNetworks {
        HookNetworks { allowed }
    }

    /// The allow-listed networks.
    pub fn allowed(&self) -> &[IpNet] {
        &self.allowed
    }

    /// Whether a hook may connect to `ip`: it is public, or in an allow-listed network.
    pub fn permits(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        restricted(ip).is_none() || self.allowed.iter().any(|net| net.contains(&ip))
    }

    /// Checks an address a hook URL names literally; the error says what kind of address
    /// it is and how to allow it.
    pub fn check_literal(&self, ip: IpAddr) -> Result<(), String> {
        if self.permits(ip) {
            return Ok(());
        }
        let kind = restricted(canonical(ip)).unwrap_or("restricted");
        Err(format!(
            "{ip} is a {kind} address; a hook may reach it only if the server's operator \
             allow-lists its network (writ server --hook-allow-net CIDR)"
        ))
    }
}

/// An IPv4 address written as IPv6 (`::ffff:a.b.c.d`) is that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// The kind of a non-public address, or `None` for a public one.
pub fn restricted(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => restricted_v4(v4),
        IpAddr::V6(v6) => restricted_v6(v6),
    }
}

fn restricted_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if a == 0 {
        Some("\"this network\"")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (carrier-grade NAT)")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some("multicast or reserved")
    } else if (a == 192 && b == 0 && c == 0) || (a == 198 && (b == 18 || b == 19)) {
        Some("reserved")
    } else {
        None
    }
}

fn restricted_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    let embedded_v4 = |ip: &Ipv6Addr| {
        let o = ip.octets();
        Ipv4Addr::new(o[12], o[13], o[14], o[15])
    };
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if segments[0] & 0xfe00 == 0xfc00 {
        Some("unique local (private)")
    } else if segments[0] & 0xffc0 == 0xfe80 || segments[0] & 0xffc0 == 0xfec0 {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast or reserved")
    } else if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] || segments[..6] == [0; 6] {
        // NAT64 and the deprecated IPv4-compatible form reach the IPv4 address inside.
        restricted_v4(embedded_v4(&ip))
    } else if segments[0] == 0x2002 {
        // 6to4: the IPv4 address is in the second and third segments.
        let [_, hi, lo, ..] = segments;
        restricted_v4(Ipv4Addr::new(
            (hi >> 8) as u8,
            hi as u8,
            (lo >> 8) as u8,
            lo as u8,
        ))
    } else {
        None
    }
}

/// A DNS resolver for hook calls that answers only with addresses hooks may reach.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    networks: Arc<HookNetworks>,
}

impl GuardedResolver {
    /// A resolver that lets through only what `networks` permits.
    pub fn new(networks: Arc<HookNetworks>) -> GuardedResolver {
        GuardedResolver { networks }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let networks = self.networks.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = resolved
                .iter()
                .copied()
                .filter(|a| networks.permits(a.ip()))
                .collect();
            if permitted.is_empty() {
                let error: Box<dyn std::error::Error + Send + Sync> = format!(
                    "{host} resolves to no address a hook may reach ({} found; \
                     not public and not allow-listed)",
                    resolved.len()
                )
                .into();
                return Err(error);
            }
            let addrs: reqwest::dns::Addrs = Box::new(permitted.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn only_public_addresses_are_permitted_by_default() {
        let none = HookNetworks::default();
        for denied in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.0.170",
            "198.18.0.1",
            "::1",
            "::",
            "fd00::1",
            "fc00::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::10.0.0.1",
            "2002:c0a8:0101::1",
        ] {
            assert!(!none.permits(ip(denied)), "{denied} was permitted");
            assert!(none.check_literal(ip(denied)).is_err(), "{denied}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "2002:5db8:d822::1",
            "::ffff:8.8.8.8",
        ] {
            assert!(none.permits(ip(public)), "{public} was refused");
        }
    }

    #[test]
    fn allow_listed_networks_are_permitted_and_say_how_in_the_error() {
        let nets = HookNetworks::new(vec![
            "127.0.0.0/8".parse().unwrap(),
            "fd00:1::/32".parse().unwrap(),
        ]);
        assert!(nets.permits(ip("127.0.0.1")));
        assert!(nets.permits(ip("::ffff:127.0.0.1")));
        assert!(nets.permits(ip("fd00:1::5")));
        assert!(!nets.permits(ip("fd00:2::5")));
        assert!(!nets.permits(ip("::1")));
        let err = nets.check_literal(ip("169.254.169.254")).unwrap_err();
        assert!(err.contains("link-local"), "{err}");
        assert!(err.contains("--hook-allow-net"), "{err}");
    }
}
