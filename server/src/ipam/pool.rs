//! Default address pools and first-fit subnet picking from them (SEMANTICS §6).

use std::fmt;
use std::str::FromStr;

use super::cidr::{Cidr, host_mask};

/// A default address pool: `base` cut into subnets of `size` bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    pub base: Cidr,
    pub size: u8,
}

/// Why a `--default-address-pool` value was refused; the text quotes the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid default address pool {input:?}: {reason}")]
pub struct PoolParseError {
    pub input: String,
    pub reason: String,
}

impl FromStr for Pool {
    type Err = PoolParseError;

    /// "base=172.17.0.0/16,size=16": keys in any order, each exactly once, spaces around parts ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| PoolParseError {
            input: s.to_string(),
            reason,
        };
        let mut base = None;
        let mut size = None;
        for field in s.split(',') {
            let (key, value) = field
                .split_once('=')
                .ok_or_else(|| fail(format!("{:?} is not key=value", field.trim())))?;
            let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
            let slot = match key.as_str() {
                "base" => &mut base,
                "size" => &mut size,
                _ => {
                    return Err(fail(format!(
                        "unknown key {key:?} (expected base and size)"
                    )));
                }
            };
            if slot.replace(value).is_some() {
                return Err(fail(format!("{key} is given twice")));
            }
        }
        let base = base.ok_or_else(|| fail("missing base=CIDR".into()))?;
        let size = size.ok_or_else(|| fail("missing size=N".into()))?;
        let base: Cidr = base
            .parse()
            .map_err(|e: super::ParseError| fail(e.to_string()))?;
        if !base.is_masked() {
            return Err(fail(format!(
                "base {base} has host bits set: it should be {}",
                base.masked()
            )));
        }
        let size: u8 = size
            .parse()
            .ok()
            .filter(|_| size.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| fail(format!("size {size:?} is not a prefix length")))?;
        if size > base.width() {
            return Err(fail(format!(
                "size {size} is longer than {} bits",
                base.width()
            )));
        }
        if size < base.prefix {
            return Err(fail(format!(
                "size {size} is shorter than the base prefix /{}",
                base.prefix
            )));
        }
        Ok(Pool { base, size })
    }
}

impl fmt::Display for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "base={},size={}", self.base, self.size)
    }
}

/// Docker's local defaults in order: 172.17.0.0/16, 172.18.0.0/16, 172.19.0.0/16, 172.20.0.0/14, 172.24.0.0/14, 172.28.0.0/14 (each cut into /16s) and 192.168.0.0/16 cut into /20s.
pub fn default_pools() -> Vec<Pool> {
    use std::net::{IpAddr, Ipv4Addr};
    let pool = |a: u8, b: u8, prefix: u8, size: u8| Pool {
        base: Cidr {
            addr: IpAddr::V4(Ipv4Addr::new(a, b, 0, 0)),
            prefix,
        },
        size,
    };
    vec![
        pool(172, 17, 16, 16),
        pool(172, 18, 16, 16),
        pool(172, 19, 16, 16),
        pool(172, 20, 14, 16),
        pool(172, 24, 14, 16),
        pool(172, 28, 14, 16),
        pool(192, 168, 16, 20),
    ]
}

/// Docker 27+'s IPv6 pool when none is configured: a unique local /48 (RFC 4193: fd00::/8
/// followed by a 40-bit global ID) cut into /64s. The global ID is a stable hash (FNV-1a, whose
/// output never changes between builds) of this daemon's random stored ID, so the prefix stays
/// the same across restarts and differs between daemons.
pub fn ula_pool(daemon_id: &str) -> Pool {
    const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = daemon_id.bytes().fold(FNV_OFFSET, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(FNV_PRIME)
    });
    let global_id = u128::from(hash & ((1 << 40) - 1));
    let base = (0xfdu128 << 120) | (global_id << 80);
    Pool {
        base: Cidr {
            addr: std::net::IpAddr::V6(std::net::Ipv6Addr::from(base)),
            prefix: 48,
        },
        size: 64,
    }
}

/// The pools in force: `pools`, plus this daemon's ULA pool when none of them is IPv6, as
/// Docker adds its own, so that `EnableIPv6` needs no subnet and no configuration.
pub fn with_ipv6_pool(mut pools: Vec<Pool>, daemon_id: &str) -> Vec<Pool> {
    if !pools.iter().any(|p| !p.base.is_ipv4()) {
        pools.push(ula_pool(daemon_id));
    }
    pools
}

/// An inclusive address interval in the family's numeric domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    first: u128,
    last: u128,
}

/// The blocks of one family as sorted, disjoint, non-adjacent spans, so one binary search finds the next obstacle.
fn merged_spans<'a>(family_v4: bool, blocks: impl Iterator<Item = &'a Cidr>) -> Vec<Span> {
    let mut spans: Vec<Span> = blocks
        .filter(|c| c.is_ipv4() == family_v4)
        .map(|c| Span {
            first: c.first_bits(),
            last: c.last_bits(),
        })
        .collect();
    spans.sort_unstable_by_key(|s| s.first);
    let mut merged: Vec<Span> = Vec::with_capacity(spans.len());
    for s in spans {
        match merged.last_mut() {
            Some(prev) if s.first <= prev.last.saturating_add(1) => {
                prev.last = prev.last.max(s.last)
            }
            _ => merged.push(s),
        }
    }
    merged
}

/// The pools of one family as Docker uses them: masked, in address order, dropping a pool that overlaps an earlier one (its space is already being cut) and one whose size does not fit its base.
pub(crate) fn usable_pools(pools: &[Pool], family_v4: bool) -> Vec<Pool> {
    let mut usable: Vec<Pool> = pools
        .iter()
        .filter(|p| p.base.is_ipv4() == family_v4)
        .filter(|p| p.size >= p.base.prefix && p.size <= p.base.width())
        .map(|p| Pool {
            base: p.base.masked(),
            size: p.size,
        })
        .collect();
    usable.sort_by_key(|p| (p.base.first_bits(), p.base.prefix));
    let mut kept: Vec<Pool> = Vec::with_capacity(usable.len());
    for p in usable {
        if kept.last().is_none_or(|k| !k.base.overlaps(&p.base)) {
            kept.push(p);
        }
    }
    kept
}

/// First fit: the lowest subnet of each pool (pools tried in order) that overlaps neither `taken` (subnets of existing networks) nor `reserved` (host routes/addresses). Must be fast with thousands of taken subnets and huge pools (e.g. 10.0.0.0/8 cut into /24s): skip past an overlapping taken/reserved prefix in one step instead of testing every candidate against every entry; O((taken+reserved) log n) is the goal.
///
/// "In order" is Docker's: address order, after dropping overlapping and ill-sized pools (see `usable_pools`).
pub fn pick_subnet(
    pools: &[Pool],
    family_v4: bool,
    taken: &[Cidr],
    reserved: &[Cidr],
) -> Option<Cidr> {
    let obstacles = merged_spans(family_v4, taken.iter().chain(reserved));
    usable_pools(pools, family_v4)
        .iter()
        .find_map(|pool| first_fit(pool, &obstacles))
}

/// The lowest `pool.size` block of `pool.base` that touches no obstacle; each step jumps past one obstacle.
fn first_fit(pool: &Pool, obstacles: &[Span]) -> Option<Cidr> {
    let block_mask = host_mask(pool.base.width() - pool.size);
    let pool_last = pool.base.last_bits();
    let mut candidate = pool.base.first_bits();
    loop {
        let candidate_last = candidate | block_mask;
        let next = obstacles.partition_point(|s| s.last < candidate);
        match obstacles.get(next) {
            Some(s) if s.first <= candidate_last => {
                candidate = (s.last | block_mask).checked_add(1)?;
                if candidate > pool_last {
                    return None;
                }
            }
            _ => {
                let addr = super::cidr::from_bits(pool.base.addr, candidate);
                return Cidr::new(addr, pool.size);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn c(s: &str) -> Cidr {
        s.parse().unwrap()
    }

    fn p(s: &str) -> Pool {
        s.parse().unwrap()
    }

    /// Picks subnets one after another, as successive creates would.
    fn pick_n(pools: &[Pool], n: usize, reserved: &[Cidr]) -> Vec<Cidr> {
        let mut taken = Vec::new();
        for _ in 0..n {
            let next = pick_subnet(pools, true, &taken, reserved).unwrap();
            taken.push(next);
        }
        taken
    }

    #[test]
    fn pool_parses_in_either_key_order() {
        let want = Pool {
            base: c("172.17.0.0/16"),
            size: 16,
        };
        assert_eq!(p("base=172.17.0.0/16,size=16"), want);
        assert_eq!(p("size=16,base=172.17.0.0/16"), want);
        assert_eq!(p(" base = 172.17.0.0/16 , SIZE=16 "), want);
        assert_eq!(p("base=fd00::/48,size=64").base, c("fd00::/48"));
    }

    #[test]
    fn pool_displays_as_the_flag_value() {
        assert_eq!(
            p("size=20,base=192.168.0.0/16").to_string(),
            "base=192.168.0.0/16,size=20"
        );
        for pool in default_pools() {
            assert_eq!(p(&pool.to_string()), pool);
        }
    }

    #[test]
    fn pool_errors_are_clear() {
        let err = |s: &str| Pool::from_str(s).unwrap_err().to_string();
        assert_eq!(
            err("base=172.17.1.0/16,size=24"),
            "invalid default address pool \"base=172.17.1.0/16,size=24\": base 172.17.1.0/16 has host bits set: it should be 172.17.0.0/16"
        );
        assert_eq!(
            err("base=10.0.0.0/16,size=8"),
            "invalid default address pool \"base=10.0.0.0/16,size=8\": size 8 is shorter than the base prefix /16"
        );
        assert_eq!(
            err("base=10.0.0.0/8,size=33"),
            "invalid default address pool \"base=10.0.0.0/8,size=33\": size 33 is longer than 32 bits"
        );
        assert_eq!(
            err("base=fd00::/48,size=129"),
            "invalid default address pool \"base=fd00::/48,size=129\": size 129 is longer than 128 bits"
        );
        assert_eq!(
            err("base=10.0.0.0/8"),
            "invalid default address pool \"base=10.0.0.0/8\": missing size=N"
        );
        assert_eq!(
            err("size=24"),
            "invalid default address pool \"size=24\": missing base=CIDR"
        );
        assert_eq!(
            err("base=10.0.0.0/8,size=24,mode=x"),
            "invalid default address pool \"base=10.0.0.0/8,size=24,mode=x\": unknown key \"mode\" (expected base and size)"
        );
        assert_eq!(
            err("base=10.0.0.0/8,size=24,size=20"),
            "invalid default address pool \"base=10.0.0.0/8,size=24,size=20\": size is given twice"
        );
        assert_eq!(
            err("base=10.0.0.0,size=24"),
            "invalid default address pool \"base=10.0.0.0,size=24\": invalid CIDR address: 10.0.0.0"
        );
        assert_eq!(
            err("base=10.0.0.0/8,size=+24"),
            "invalid default address pool \"base=10.0.0.0/8,size=+24\": size \"+24\" is not a prefix length"
        );
        assert_eq!(
            err("10.0.0.0/8"),
            "invalid default address pool \"10.0.0.0/8\": \"10.0.0.0/8\" is not key=value"
        );
        assert!(Pool::from_str("").is_err());
    }

    #[test]
    fn defaults_are_dockers() {
        let text: Vec<String> = default_pools().iter().map(Pool::to_string).collect();
        assert_eq!(
            text,
            [
                "base=172.17.0.0/16,size=16",
                "base=172.18.0.0/16,size=16",
                "base=172.19.0.0/16,size=16",
                "base=172.20.0.0/14,size=16",
                "base=172.24.0.0/14,size=16",
                "base=172.28.0.0/14,size=16",
                "base=192.168.0.0/16,size=20",
            ]
        );
    }

    #[test]
    fn first_pick_is_172_17_then_172_18_when_reserved() {
        let pools = default_pools();
        assert_eq!(
            pick_subnet(&pools, true, &[], &[]),
            Some(c("172.17.0.0/16"))
        );
        assert_eq!(
            pick_subnet(&pools, true, &[], &[c("172.17.0.0/16")]),
            Some(c("172.18.0.0/16"))
        );
        // A host route inside a pool block (a resolver /32) also rules the block out.
        assert_eq!(
            pick_subnet(&pools, true, &[c("172.17.0.0/16")], &[c("172.18.5.5/32")]),
            Some(c("172.19.0.0/16"))
        );
    }

    #[test]
    fn defaults_give_15_slash16_then_16_slash20_then_exhaust() {
        let pools = default_pools();
        let got = pick_n(&pools, 31, &[]);
        let want: Vec<Cidr> = (17..=31)
            .map(|b| c(&format!("172.{b}.0.0/16")))
            .chain((0..16).map(|i| c(&format!("192.168.{}.0/20", i * 16))))
            .collect();
        assert_eq!(got, want);
        assert_eq!(got[15], c("192.168.0.0/20"));
        assert_eq!(pick_subnet(&pools, true, &got, &[]), None);
    }

    #[test]
    fn released_subnet_is_reused_first() {
        let pools = default_pools();
        let mut taken = pick_n(&pools, 20, &[]);
        let freed = taken.remove(5);
        assert_eq!(pick_subnet(&pools, true, &taken, &[]), Some(freed));
        taken.retain(|t| *t != c("172.17.0.0/16"));
        assert_eq!(
            pick_subnet(&pools, true, &taken, &[]),
            Some(c("172.17.0.0/16"))
        );
    }

    #[test]
    fn partial_overlaps_skip_to_the_next_aligned_block() {
        let pools = [p("base=10.0.0.0/8,size=24")];
        // A /23 and an odd /25 in the way.
        let taken = [c("10.0.0.0/23"), c("10.0.2.128/25")];
        assert_eq!(
            pick_subnet(&pools, true, &taken, &[]),
            Some(c("10.0.3.0/24"))
        );
        // A wide user subnet covering the start of the pool.
        let taken = [c("10.0.0.0/12")];
        assert_eq!(
            pick_subnet(&pools, true, &taken, &[]),
            Some(c("10.16.0.0/24"))
        );
        // A taken network larger than the whole pool hides it.
        let pools2 = [
            p("base=10.1.0.0/16,size=24"),
            p("base=192.168.0.0/16,size=24"),
        ];
        assert_eq!(
            pick_subnet(&pools2, true, &[c("10.0.0.0/8")], &[]),
            Some(c("192.168.0.0/24"))
        );
    }

    #[test]
    fn obstacles_of_the_other_family_are_ignored() {
        let pools = default_pools();
        assert_eq!(
            pick_subnet(&pools, true, &[c("::/0")], &[]),
            Some(c("172.17.0.0/16"))
        );
        assert_eq!(pick_subnet(&pools, false, &[], &[]), None);
    }

    #[test]
    fn pools_are_tried_in_address_order_and_overlapping_ones_dropped() {
        let pools = [
            p("base=192.168.0.0/16,size=24"),
            p("base=10.0.0.0/8,size=24"),
        ];
        assert_eq!(pick_subnet(&pools, true, &[], &[]), Some(c("10.0.0.0/24")));
        // 10.1.0.0/16 lies inside 10.0.0.0/8, which is cut into /24s already.
        let pools = [p("base=10.0.0.0/8,size=24"), p("base=10.1.0.0/16,size=16")];
        assert_eq!(usable_pools(&pools, true).len(), 1);
        // Hand-built pools with host bits or a bad size are tolerated.
        let odd = [
            Pool {
                base: c("10.9.9.9/16"),
                size: 24,
            },
            Pool {
                base: c("11.0.0.0/16"),
                size: 8,
            },
        ];
        assert_eq!(pick_subnet(&odd, true, &[], &[]), Some(c("10.9.0.0/24")));
        assert_eq!(usable_pools(&odd, true).len(), 1);
    }

    #[test]
    fn ipv6_pools_are_cut_too() {
        let pools = [p("base=fd00:1::/48,size=64")];
        let first = pick_subnet(&pools, false, &[], &[]).unwrap();
        assert_eq!(first, c("fd00:1::/64"));
        let second = pick_subnet(&pools, false, &[first, c("fd00:1:0:1::/64")], &[]).unwrap();
        assert_eq!(second, c("fd00:1:0:2::/64"));
        // The top of the IPv6 space does not overflow.
        let top = [p(
            "base=ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120,size=128",
        )];
        let taken = [c("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/121")];
        assert_eq!(
            pick_subnet(&top, false, &taken, &[]),
            Some(c("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff80/128"))
        );
        assert_eq!(pick_subnet(&top, false, &[c("ffff::/16")], &[]), None);
        let whole = [p("base=::/0,size=0")];
        assert_eq!(pick_subnet(&whole, false, &[], &[]), Some(c("::/0")));
        assert_eq!(pick_subnet(&whole, false, &[c("::1/128")], &[]), None);
    }

    #[test]
    fn ula_pool_is_a_stable_fd_slash48_cut_into_slash64s() {
        // Pinned: a change would move every daemon's future IPv6 subnets.
        assert_eq!(ula_pool("netbridge"), p("base=fdd4:6fb5:5ead::/48,size=64"));
        let id = crate::model::new_id();
        let pool = ula_pool(&id);
        assert_eq!(pool, ula_pool(&id), "same ID, same prefix");
        assert!(pool.base.is_masked() && c("fd00::/8").contains_cidr(&pool.base));
        assert_eq!((pool.base.prefix, pool.size), (48, 64));
        assert_ne!(ula_pool(&crate::model::new_id()), pool, "another daemon");
        // Handed out first fit, /64 by /64.
        let pools = [pool];
        let first = pick_subnet(&pools, false, &[], &[]).unwrap();
        assert_eq!(first, Cidr::new(pool.base.addr, 64).unwrap());
        let second = pick_subnet(&pools, false, &[first], &[]).unwrap();
        assert_eq!(second.first_bits(), first.first_bits() + (1 << 64));
    }

    #[test]
    fn the_ula_pool_is_added_only_when_no_ipv6_pool_is_configured() {
        let ula = ula_pool("x");
        let got = with_ipv6_pool(default_pools(), "x");
        assert_eq!(got.len(), default_pools().len() + 1);
        assert_eq!(got.last(), Some(&ula));
        let own = vec![p("base=10.0.0.0/8,size=24"), p("base=fd12::/48,size=64")];
        assert_eq!(with_ipv6_pool(own.clone(), "x"), own);
        assert_eq!(with_ipv6_pool(Vec::new(), "x"), vec![ula]);
    }

    #[test]
    fn top_of_ipv4_space() {
        let pools = [p("base=255.255.255.0/24,size=31")];
        let taken = [
            c("255.255.255.0/25"),
            c("255.255.255.128/26"),
            c("255.255.255.192/27"),
        ];
        let reserved = [
            c("255.255.255.224/28"),
            c("255.255.255.240/29"),
            c("255.255.255.248/30"),
        ];
        assert_eq!(
            pick_subnet(&pools, true, &taken, &reserved),
            Some(c("255.255.255.252/31"))
        );
        let reserved = [c("255.255.255.224/27")];
        assert_eq!(pick_subnet(&pools, true, &taken, &reserved), None);
    }

    #[test]
    fn five_thousand_taken_slash24s_in_10_slash8_are_skipped_instantly() {
        let pools = [p("base=10.0.0.0/8,size=24")];
        // Every /24 from 10.0.0.0 up, except 10.0.19.0/24, and taken in shuffled order.
        let mut taken: Vec<Cidr> = (0u32..5001)
            .filter(|i| *i != 19 + 256 * 7)
            .map(|i| c(&format!("10.{}.{}.0/24", i / 256, i % 256)))
            .collect();
        taken.reverse();
        taken.swap(0, 2500);
        let start = Instant::now();
        assert_eq!(
            pick_subnet(&pools, true, &taken, &[]),
            Some(c("10.7.19.0/24"))
        );
        // With the hole filled, the first free block follows the run.
        taken.push(c("10.7.19.0/24"));
        assert_eq!(
            pick_subnet(&pools, true, &taken, &[]),
            Some(c("10.19.137.0/24"))
        );
        // Many reserved /32s, one in every other /24, cost no more.
        let reserved: Vec<Cidr> = (0u32..5000)
            .map(|i| c(&format!("10.{}.{}.7/32", 20 + i / 128, (i % 128) * 2)))
            .collect();
        assert_eq!(
            pick_subnet(&pools, true, &taken, &reserved),
            Some(c("10.19.137.0/24"))
        );
        let mut taken_more = taken.clone();
        taken_more.extend((137u32..256).map(|i| c(&format!("10.19.{i}.0/24"))));
        assert_eq!(
            pick_subnet(&pools, true, &taken_more, &reserved),
            Some(c("10.20.1.0/24"))
        );
        assert!(
            start.elapsed() < Duration::from_secs(1),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn huge_ipv6_pool_with_many_taken_is_fast() {
        let pools = [p("base=fd00::/16,size=64")];
        let taken: Vec<Cidr> = (0u32..5000)
            .map(|i| c(&format!("fd00:0:0:{i:x}::/64")))
            .collect();
        let start = Instant::now();
        assert_eq!(
            pick_subnet(&pools, false, &taken, &[]),
            Some(c("fd00:0:0:1388::/64"))
        );
        assert!(start.elapsed() < Duration::from_secs(1));
    }
}
