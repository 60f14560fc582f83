//! Choosing and checking the subnets of networks: against the other networks of the store and
//! the host's own routes, IPv4 and IPv6.

use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

/// A route of the host: destination and device.
#[derive(Debug, Clone)]
pub(crate) struct HostRoute {
    pub dest: IpNet,
    pub device: String,
}

/// The host's routes except default routes, from /proc/net/route (hex, little-endian) and
/// /proc/net/ipv6_route (hex, network order); link-local and multicast IPv6 routes skipped.
pub(crate) fn host_routes() -> Vec<HostRoute> {
    let mut out = fs::read_to_string("/proc/net/route")
        .map(|t| parse_routes(&t))
        .unwrap_or_default();
    out.extend(
        fs::read_to_string("/proc/net/ipv6_route")
            .map(|t| parse_routes6(&t))
            .unwrap_or_default(),
    );
    out
}

pub(crate) fn parse_routes(text: &str) -> Vec<HostRoute> {
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = u32::from_str_radix(f.get(1)?, 16).ok()?.swap_bytes();
            let mask = u32::from_str_radix(f.get(7)?, 16).ok()?.swap_bytes();
            let prefix = u8::try_from(mask.count_ones()).ok()?;
            if prefix == 0 {
                return None;
            }
            Some(HostRoute {
                dest: IpNet::V4(Ipv4Net::new(Ipv4Addr::from(dest), prefix).ok()?.trunc()),
                device: f[0].to_string(),
            })
        })
        .collect()
}

pub(crate) fn parse_routes6(text: &str) -> Vec<HostRoute> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let dest = Ipv6Addr::from(u128::from_str_radix(f.first()?, 16).ok()?);
            let prefix = u8::from_str_radix(f.get(1)?, 16).ok()?;
            let device = f.get(9)?.to_string();
            let local = dest.segments()[0] & 0xffc0 == 0xfe80 || dest.segments()[0] >> 8 == 0xff;
            if prefix == 0 || local || device == "lo" {
                return None;
            }
            Some(HostRoute {
                dest: IpNet::V6(Ipv6Net::new(dest, prefix).ok()?.trunc()),
                device,
            })
        })
        .collect()
}

pub(crate) fn overlaps(a: IpNet, b: IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Why a subnet cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Clash {
    Network { name: String, subnet: IpNet },
    Route { dest: IpNet, device: String },
}

/// Checks `subnet` against `taken` (other networks' subnets, by name) and the host's routes,
/// except routes through `own_bridge` (the default network's bridge may be up for another
/// root's containers).
pub(crate) fn check_free(
    subnet: IpNet,
    taken: &[(String, IpNet)],
    routes: &[HostRoute],
    own_bridge: Option<&str>,
) -> Result<(), Clash> {
    if let Some((name, s)) = taken.iter().find(|(_, s)| overlaps(*s, subnet)) {
        return Err(Clash::Network {
            name: name.clone(),
            subnet: *s,
        });
    }
    // A route through one of our own bridges belongs to a network checked above (or to one
    // whose record is gone while its bridge lingers, which the next teardown removes).
    if let Some(r) = routes
        .iter()
        .filter(|r| own_bridge != Some(r.device.as_str()))
        .find(|r| overlaps(r.dest, subnet))
    {
        return Err(Clash::Route {
            dest: r.dest,
            device: r.device.clone(),
        });
    }
    Ok(())
}

/// The first subnet of `prefix` bits in `pool` that is free.
pub(crate) fn pick(
    pool: IpNet,
    prefix: u8,
    taken: &[(String, IpNet)],
    routes: &[HostRoute],
) -> Option<IpNet> {
    let mut candidates = pool.subnets(prefix).ok()?;
    candidates.find(|s| check_free(*s, taken, routes, None).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_route_lines_parse_to_networks_without_default_routes() {
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                    eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        let r = parse_routes(text);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].dest, "192.0.2.0/24".parse::<IpNet>().unwrap());
        assert_eq!(r[0].device, "eth0");
    }

    #[test]
    fn proc_net_ipv6_route_lines_parse_without_link_local_and_default_routes() {
        let text = "fd000000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n\
            fe800000000000000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0\n\
            00000000000000000000000000000000 00 00000000000000000000000000000000 00 fd000000000000000000000000000001 00000400 00000001 00000000 00000003     eth0\n";
        let r = parse_routes6(text);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].dest, "fd00::/64".parse::<IpNet>().unwrap());
    }

    #[test]
    fn picking_skips_taken_subnets_and_host_routes() {
        let taken = vec![("a".to_string(), "10.9.0.0/24".parse().unwrap())];
        let routes = vec![HostRoute {
            dest: "10.9.1.0/24".parse().unwrap(),
            device: "eth9".into(),
        }];
        let got = pick("10.9.0.0/16".parse().unwrap(), 24, &taken, &routes).unwrap();
        assert_eq!(got, "10.9.2.0/24".parse::<IpNet>().unwrap());
        let got6 = pick("fd00:1::/48".parse().unwrap(), 64, &[], &[]).unwrap();
        assert_eq!(got6, "fd00:1::/64".parse::<IpNet>().unwrap());
        assert!(matches!(
            check_free("10.9.1.128/25".parse().unwrap(), &taken, &routes, None),
            Err(Clash::Route { .. })
        ));
        assert!(check_free(
            "10.9.1.0/24".parse().unwrap(),
            &taken,
            &routes,
            Some("eth9")
        )
        .is_ok());
    }
}
