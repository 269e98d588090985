//! Per-source rate limiting of handshake messages under load.
//!
//! When a device is under load, handshake messages that carry a valid mac2 (so their source
//! address is proven, whitepaper §5.3) are still limited per source, like the Linux kernel's
//! `drivers/net/wireguard/ratelimiter.c`: a token bucket per source key, refilled at
//! [`PACKETS_PER_SECOND`] and holding at most [`PACKETS_BURSTABLE`] packets. Tokens are
//! measured in nanoseconds of refill time, so a packet costs [`PACKET_COST`] and a full
//! bucket holds [`TOKEN_MAX`].
//!
//! The source key is the whole address for IPv4 and the /64 prefix for IPv6, since a single
//! host is commonly handed a whole /64. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, what a
//! dual-stack socket reports for IPv4 peers) is keyed as the IPv4 address it maps: keyed by
//! its /64, every IPv4 source would share one bucket.
//!
//! The table holds at most `max_entries` sources. A new source always gets a bucket: when the
//! table is full, the oldest entry not used since it was last passed over is evicted (the
//! CLOCK approximation of least-recently-used: entries sit in a queue in insertion order; an
//! entry at the front that was used since gets a second chance at the back). Each packet
//! costs amortised O(1): every second chance is paid for by the packet that marked the entry
//! used. Entries unused for more than [`GC_INTERVAL`] are removed by a sweep that runs at most
//! once per [`GC_INTERVAL`] of caller time, inside [`RateLimiter::allow`]. An entry idle that
//! long has a full bucket, so dropping it changes no decision.

use crate::hasher::HashSeed;
use crate::time::Instant;
use alloc::collections::VecDeque;
use core::fmt;
use core::net::IpAddr;
use core::time::Duration;
use hashbrown::HashMap;

/// Nanoseconds in a second.
const NSEC_PER_SEC: u64 = 1_000_000_000;

/// Sustained rate allowed per source (the kernel's `PACKETS_PER_SECOND`).
pub const PACKETS_PER_SECOND: u64 = 20;

/// Packets a source may send back to back after being idle (the kernel's `PACKETS_BURSTABLE`).
pub const PACKETS_BURSTABLE: u64 = 5;

/// Tokens, in nanoseconds, that one packet costs: 50 ms (the kernel's `PACKET_COST`).
pub const PACKET_COST: u64 = NSEC_PER_SEC / PACKETS_PER_SECOND;

/// Tokens a bucket holds at most: 250 ms, five packets (the kernel's `TOKEN_MAX`).
pub const TOKEN_MAX: u64 = PACKET_COST * PACKETS_BURSTABLE;

/// How often the table is swept, and how long an entry must have been unused to be removed
/// (the kernel sweeps every `HZ` and removes entries idle for more than `NSEC_PER_SEC`).
pub const GC_INTERVAL: Duration = Duration::from_secs(1);

/// Sources a device's rate limiter holds unless the caller sets another capacity.
pub const DEFAULT_MAX_ENTRIES: usize = 8192;

/// The largest capacity [`crate::Device::set_ratelimiter_capacity`] accepts.
pub const MAX_CAPACITY: usize = 1 << 20;

/// The capacity the Linux kernel gives its table on a machine with `ram_bytes` of memory
/// (`wg_ratelimiter_init`): 65,536 sources above 1 GiB, else eight per 128 KiB of memory
/// rounded up to a power of two, at least 128.
pub fn capacity_for_ram(ram_bytes: u64) -> usize {
    const GIB: u64 = 1 << 30;
    // One 8-byte list head per 16 KiB, i.e. one list per 128 KiB, as the kernel computes it.
    let lists = if ram_bytes > GIB {
        8192
    } else {
        (ram_bytes / (1 << 14) / 8).next_power_of_two().max(16)
    };
    // At most 8192 lists, so the conversion cannot fail.
    usize::try_from(lists * 8).unwrap_or(MAX_CAPACITY)
}

/// What a bucket is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum SourceKey {
    /// A whole IPv4 address.
    V4(u32),
    /// The upper 64 bits of an IPv6 address.
    V6(u64),
}

impl SourceKey {
    fn of(source: IpAddr) -> Self {
        match source {
            IpAddr::V4(v4) => SourceKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => SourceKey::V4(u32::from(v4)),
                // The shift leaves 64 significant bits, so the cast is lossless.
                None => SourceKey::V6((u128::from(v6) >> 64) as u64),
            },
        }
    }
}

/// One source's token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Available tokens in nanoseconds, at most [`TOKEN_MAX`].
    tokens: u64,
    /// When the bucket was last used (and refilled up to).
    last_time: Instant,
    /// Used since it was inserted or last given a second chance by eviction.
    used: bool,
}

/// A table of per-source token buckets.
///
/// `now` must come from the caller's monotonic clock. If it goes backwards nothing breaks: no
/// tokens are refilled, and the table is not swept, until it has caught up again.
pub struct RateLimiter {
    /// Buckets by source key, hashed with a secret seed (sources are chosen by the network).
    entries: HashMap<SourceKey, Bucket, HashSeed>,
    /// Every key of `entries` exactly once, in eviction order (front first).
    order: VecDeque<SourceKey>,
    /// Capacity of `entries`.
    max_entries: usize,
    /// The earliest time at which the next sweep may run.
    next_gc: Instant,
    /// Entries examined by sweeps so far, to bound the sweeping work in tests.
    #[cfg(test)]
    gc_visited: usize,
    /// Queue entries examined by evictions so far, to bound the eviction work in tests.
    #[cfg(test)]
    evict_visited: usize,
}

impl RateLimiter {
    /// An empty limiter that keeps buckets for at most `max_entries` sources at once, hashing
    /// with `seed`. With `max_entries == 0` every packet is denied.
    pub fn new(max_entries: usize, seed: HashSeed) -> Self {
        RateLimiter {
            entries: HashMap::with_hasher(seed),
            order: VecDeque::new(),
            max_entries,
            next_gc: Instant::ZERO,
            #[cfg(test)]
            gc_visited: 0,
            #[cfg(test)]
            evict_visited: 0,
        }
    }

    /// The most sources the table holds.
    pub fn capacity(&self) -> usize {
        self.max_entries
    }

    /// Changes the capacity to `max_entries`, evicting (oldest first) what no longer fits.
    pub fn set_capacity(&mut self, max_entries: usize) {
        self.max_entries = max_entries;
        while self.entries.len() > max_entries {
            self.evict_one();
        }
        if self.order.capacity() > 2 * max_entries.max(16) {
            self.order.shrink_to_fit();
            self.entries.shrink_to_fit();
        }
    }

    /// Charges one packet from `source` at `now`. Returns `true` if the packet may be
    /// processed, `false` if it must be dropped because the source is over its rate (or the
    /// capacity is zero). A new source evicts an old one when the table is full.
    #[must_use]
    pub fn allow(&mut self, now: Instant, source: IpAddr) -> bool {
        self.maybe_collect_garbage(now);
        let key = SourceKey::of(source);
        if let Some(bucket) = self.entries.get_mut(&key) {
            // The kernel's algorithm: refill by the time elapsed, capped at TOKEN_MAX, then
            // spend PACKET_COST if there is that much.
            let elapsed = now.as_nanos().saturating_sub(bucket.last_time.as_nanos());
            let tokens = bucket.tokens.saturating_add(elapsed).min(TOKEN_MAX);
            bucket.last_time = bucket.last_time.max(now);
            bucket.used = true;
            let allowed = tokens >= PACKET_COST;
            bucket.tokens = if allowed {
                tokens - PACKET_COST
            } else {
                tokens
            };
            return allowed;
        }
        if self.max_entries == 0 {
            return false;
        }
        if self.entries.len() >= self.max_entries {
            self.evict_one();
        }
        // A new source starts with a full bucket and pays for this packet.
        self.entries.insert(
            key,
            Bucket {
                tokens: TOKEN_MAX - PACKET_COST,
                last_time: now,
                used: false,
            },
        );
        self.order.push_back(key);
        true
    }

    /// Removes the entry at the front of the queue that was not used since it was last passed
    /// over; used ones are marked unused and go to the back. Ends within one pass of the queue.
    fn evict_one(&mut self) {
        while let Some(key) = self.order.pop_front() {
            #[cfg(test)]
            {
                self.evict_visited += 1;
            }
            match self.entries.get_mut(&key) {
                Some(bucket) if bucket.used => {
                    bucket.used = false;
                    self.order.push_back(key);
                }
                Some(_) => {
                    self.entries.remove(&key);
                    return;
                }
                // Invariant: `order` holds exactly the keys of `entries`.
                None => {}
            }
        }
    }

    /// Removes the entries unused for more than [`GC_INTERVAL`], if the last sweep was at
    /// least [`GC_INTERVAL`] ago. The sweep is O(n), so this is O(1) amortized per call as long
    /// as there is at least one call per `n` / [`GC_INTERVAL`]; and n is at most `max_entries`.
    fn maybe_collect_garbage(&mut self, now: Instant) {
        if now < self.next_gc {
            return;
        }
        self.next_gc = now + GC_INTERVAL;
        #[cfg(test)]
        {
            self.gc_visited += self.entries.len();
        }
        self.entries
            .retain(|_, bucket| now.saturating_duration_since(bucket.last_time) <= GC_INTERVAL);
        let entries = &self.entries;
        self.order.retain(|key| entries.contains_key(key));
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("len", &self.entries.len())
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeMap;
    use core::net::{Ipv4Addr, Ipv6Addr};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn v6(segments: [u16; 8]) -> IpAddr {
        let [a, b, c, d, e, f, g, h] = segments;
        IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h))
    }

    fn seed() -> HashSeed {
        HashSeed::new(1, 2, 3)
    }

    fn ms(millis: u64) -> Instant {
        Instant::from_millis(millis)
    }

    /// Sends `n` packets from `source` at `now` and counts those allowed.
    fn burst(rl: &mut RateLimiter, now: Instant, source: IpAddr, n: usize) -> usize {
        (0..n).filter(|_| rl.allow(now, source)).count()
    }

    #[test]
    fn constants() {
        assert_eq!(PACKET_COST, 50_000_000);
        assert_eq!(TOKEN_MAX, 250_000_000);
    }

    #[test]
    fn burst_of_five_then_deny() {
        let mut rl = RateLimiter::new(DEFAULT_MAX_ENTRIES, seed());
        let src = v4(192, 0, 2, 1);
        for i in 0..PACKETS_BURSTABLE {
            assert!(rl.allow(ms(1000), src), "packet {i}");
        }
        assert!(!rl.allow(ms(1000), src));
        assert!(!rl.allow(ms(1000), src));
        assert_eq!(rl.entries.len(), 1);
    }

    #[test]
    fn refills_one_packet_per_50ms() {
        let mut rl = RateLimiter::new(DEFAULT_MAX_ENTRIES, seed());
        let src = v4(192, 0, 2, 1);
        assert_eq!(burst(&mut rl, ms(0), src, 10), 5);
        assert!(!rl.allow(ms(49), src));
        assert!(rl.allow(ms(50), src));
        assert!(!rl.allow(ms(50), src));
        // Denied packets cost nothing; 20 per second get through at a steady rate.
        let allowed = (1..=100).filter(|i| rl.allow(ms(50 + i * 10), src)).count();
        assert_eq!(allowed, 20);
    }

    #[test]
    fn bucket_caps_at_burst() {
        let mut rl = RateLimiter::new(16, seed());
        let src = v4(192, 0, 2, 1);
        assert!(rl.allow(ms(0), src));
        // 900 ms idle (no sweep removes it) refills to TOKEN_MAX, not to 18 packets.
        assert!(rl.allow(ms(500), v4(192, 0, 2, 2)));
        assert_eq!(burst(&mut rl, ms(900), src, 20), 5);
    }

    #[test]
    fn v6_same_64_shares_bucket() {
        let mut rl = RateLimiter::new(DEFAULT_MAX_ENTRIES, seed());
        let a = v6([0x2001, 0xdb8, 1, 2, 0, 0, 0, 1]);
        let b = v6([0x2001, 0xdb8, 1, 2, 0xffff, 0xffff, 0xffff, 0xffff]);
        assert_eq!(burst(&mut rl, ms(0), a, 3), 3);
        assert_eq!(burst(&mut rl, ms(0), b, 5), 2);
        assert_eq!(rl.entries.len(), 1);
    }

    #[test]
    fn v6_different_64_separate() {
        let mut rl = RateLimiter::new(DEFAULT_MAX_ENTRIES, seed());
        let a = v6([0x2001, 0xdb8, 1, 2, 0, 0, 0, 1]);
        let b = v6([0x2001, 0xdb8, 1, 3, 0, 0, 0, 1]);
        assert_eq!(burst(&mut rl, ms(0), a, 10), 5);
        assert_eq!(burst(&mut rl, ms(0), b, 10), 5);
        assert_eq!(rl.entries.len(), 2);
    }

    #[test]
    fn v4_sources_separate() {
        let mut rl = RateLimiter::new(DEFAULT_MAX_ENTRIES, seed());
        assert_eq!(burst(&mut rl, ms(0), v4(198, 51, 100, 1), 10), 5);
        assert_eq!(burst(&mut rl, ms(0), v4(198, 51, 100, 2), 10), 5);
        // An IPv6 address whose top bits equal an IPv4 key is still a different source.
        assert_eq!(
            burst(&mut rl, ms(0), v6([0xc633, 0x6401, 0, 0, 0, 0, 0, 0]), 10),
            5
        );
        assert_eq!(rl.entries.len(), 3);
    }

    #[test]
    fn v4_mapped_v6_is_keyed_as_v4() {
        let mut rl = RateLimiter::new(DEFAULT_MAX_ENTRIES, seed());
        let mapped = IpAddr::V6(Ipv4Addr::new(203, 0, 113, 7).to_ipv6_mapped());
        let other_mapped = IpAddr::V6(Ipv4Addr::new(203, 0, 113, 8).to_ipv6_mapped());
        assert_eq!(burst(&mut rl, ms(0), mapped, 3), 3);
        assert_eq!(burst(&mut rl, ms(0), v4(203, 0, 113, 7), 5), 2);
        // Not lumped with every other IPv4 source in ::ffff:0:0/96.
        assert_eq!(burst(&mut rl, ms(0), other_mapped, 10), 5);
        assert_eq!(rl.entries.len(), 2);
    }

    /// Checks that `order` holds exactly the keys of `entries`, each once.
    fn assert_consistent(rl: &RateLimiter) {
        assert_eq!(rl.order.len(), rl.entries.len());
        let keys: alloc::collections::BTreeSet<SourceKey> = rl.order.iter().copied().collect();
        assert_eq!(keys.len(), rl.order.len());
        assert!(keys.iter().all(|k| rl.entries.contains_key(k)));
    }

    #[test]
    fn table_full_evicts_oldest_unused_and_admits_new_source() {
        let mut rl = RateLimiter::new(3, seed());
        for d in 1..=3 {
            assert!(rl.allow(ms(0), v4(10, 0, 0, d)));
        }
        // .2 is used again, so .1 (inserted first, unused since) is the one to go.
        assert!(rl.allow(ms(5), v4(10, 0, 0, 2)));
        assert_eq!(burst(&mut rl, ms(10), v4(10, 0, 0, 4), 10), 5);
        assert_eq!(rl.entries.len(), 3);
        assert!(!rl.entries.contains_key(&SourceKey::of(v4(10, 0, 0, 1))));
        // .2 kept its bucket: 5 - 2 packets left.
        assert_eq!(burst(&mut rl, ms(10), v4(10, 0, 0, 2), 10), 3);
        // .2 got its second chance; .3 is the oldest unused now.
        assert!(rl.allow(ms(20), v4(10, 0, 0, 5)));
        assert!(!rl.entries.contains_key(&SourceKey::of(v4(10, 0, 0, 3))));
        assert!(rl.entries.contains_key(&SourceKey::of(v4(10, 0, 0, 2))));
        assert_consistent(&rl);
        // Once the old entries have been idle long enough, a sweep removes them.
        assert!(rl.allow(ms(2100), v4(10, 0, 0, 6)));
        assert_eq!(rl.entries.len(), 1);
        assert_consistent(&rl);
    }

    /// A table full of active sources (every one marked used) still admits a flood of new
    /// ones, each eviction costing amortised O(1) queue steps.
    #[test]
    fn eviction_work_is_amortised_constant() {
        let mut rl = RateLimiter::new(1000, seed());
        for i in 0..1000u32 {
            assert!(rl.allow(ms(0), IpAddr::V4(Ipv4Addr::from(i))));
            assert!(rl.allow(ms(0), IpAddr::V4(Ipv4Addr::from(i))));
        }
        for i in 0..100_000u32 {
            let src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            assert!(rl.allow(ms(1 + u64::from(i) / 1000), src));
            assert!(rl.entries.len() <= 1000);
        }
        assert_consistent(&rl);
        assert!(rl.evict_visited <= 2 * 100_000, "{}", rl.evict_visited);
    }

    #[test]
    fn set_capacity_shrinks_oldest_first() {
        let mut rl = RateLimiter::new(DEFAULT_MAX_ENTRIES, seed());
        for d in 1..=10 {
            assert!(rl.allow(ms(0), v4(10, 0, 0, d)));
        }
        rl.set_capacity(4);
        assert_eq!(rl.capacity(), 4);
        assert_eq!(rl.entries.len(), 4);
        for d in 7..=10 {
            assert!(rl.entries.contains_key(&SourceKey::of(v4(10, 0, 0, d))));
        }
        assert_consistent(&rl);
        rl.set_capacity(65_536);
        assert!(rl.allow(ms(0), v4(10, 0, 0, 1)));
        assert_eq!(rl.entries.len(), 5);
    }

    #[test]
    fn capacity_follows_the_kernel() {
        assert_eq!(capacity_for_ram(0), 128);
        assert_eq!(capacity_for_ram(128 << 20), 8192);
        assert_eq!(capacity_for_ram(512 << 20), 32_768);
        assert_eq!(capacity_for_ram(1 << 30), 65_536);
        assert_eq!(capacity_for_ram(64 << 30), 65_536);
        assert_eq!(capacity_for_ram(u64::MAX), 65_536);
    }

    #[test]
    fn zero_capacity_denies_everything() {
        let mut rl = RateLimiter::new(0, seed());
        assert!(rl.entries.is_empty());
        assert!(!rl.allow(ms(0), v4(10, 0, 0, 1)));
        assert!(!rl.allow(ms(5000), v4(10, 0, 0, 1)));
        assert!(rl.entries.is_empty());
    }

    #[test]
    fn gc_frees_entries_idle_more_than_one_second() {
        let mut rl = RateLimiter::new(DEFAULT_MAX_ENTRIES, seed());
        for d in 0..100 {
            assert!(rl.allow(ms(0), v4(10, 1, 0, d)));
        }
        assert!(rl.allow(ms(600), v4(10, 2, 0, 0)));
        assert_eq!(rl.entries.len(), 101);
        // First sweep due at 1 s: idle for exactly 1 s is kept.
        assert!(rl.allow(ms(1000), v4(10, 3, 0, 0)));
        assert_eq!(rl.entries.len(), 102);
        // Next sweep at 2 s: the t = 0 and t = 0.6 s entries go, the t = 1 s one stays.
        assert!(rl.allow(ms(2000), v4(10, 4, 0, 0)));
        assert_eq!(rl.entries.len(), 2);
        assert!(rl.allow(ms(3500), v4(10, 4, 0, 0)));
        assert_eq!(rl.entries.len(), 1);
        assert_eq!(rl.gc_visited, 101 + 102 + 2);
    }

    #[test]
    fn time_going_backwards_mints_no_tokens() {
        let mut rl = RateLimiter::new(DEFAULT_MAX_ENTRIES, seed());
        let src = v4(192, 0, 2, 9);
        assert_eq!(burst(&mut rl, ms(10_000), src, 5), 5);
        assert!(!rl.allow(ms(5_000), src));
        // Back at 10 s no time has passed for the bucket.
        assert!(!rl.allow(ms(10_000), src));
        assert!(rl.allow(ms(10_050), src));
    }

    /// 100k unique sources, one every 100 µs for 10 s, against the default table: the table
    /// never exceeds its capacity, the sweeps together visit at most one table per second,
    /// and every new source is admitted.
    #[test]
    fn flood_of_unique_sources_stays_bounded() {
        let mut rl = RateLimiter::new(DEFAULT_MAX_ENTRIES, seed());
        let mut allowed_per_second = [0usize; 10];
        for i in 0..100_000u32 {
            let now = Instant::from_nanos(u64::from(i) * 100_000);
            let src = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i));
            if rl.allow(now, src) {
                allowed_per_second[(i / 10_000) as usize] += 1;
            }
            assert!(rl.entries.len() <= DEFAULT_MAX_ENTRIES);
        }
        assert!(
            rl.gc_visited <= 11 * DEFAULT_MAX_ENTRIES,
            "{}",
            rl.gc_visited
        );
        // Every new source is admitted: a full table evicts.
        assert_eq!(allowed_per_second, [10_000; 10]);
        assert_consistent(&rl);

        // A flood at a single instant with room for everyone sweeps once.
        let mut rl = RateLimiter::new(200_000, seed());
        for i in 0..100_000u32 {
            assert!(rl.allow(ms(7), IpAddr::V4(Ipv4Addr::from(i))));
        }
        assert_eq!(rl.entries.len(), 100_000);
        assert_eq!(rl.gc_visited, 0);
    }

    /// The sweep never changes a decision: compare with an unbounded table that is never
    /// swept, on random traffic from few sources at random times.
    #[test]
    fn gc_is_transparent() {
        let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
        let mut rl = RateLimiter::new(1 << 20, seed());
        let mut model: BTreeMap<SourceKey, Bucket> = BTreeMap::new();
        let mut now = 0u64;
        for step in 0..50_000 {
            now += rng.gen_range(0..40_000_000u64);
            let src = v4(10, 0, 0, rng.gen_range(0..32));
            let key = SourceKey::of(src);
            let expected = match model.get_mut(&key) {
                Some(b) => {
                    let tokens = (b.tokens + (now - b.last_time.as_nanos())).min(TOKEN_MAX);
                    b.last_time = Instant::from_nanos(now);
                    let ok = tokens >= PACKET_COST;
                    b.tokens = if ok { tokens - PACKET_COST } else { tokens };
                    ok
                }
                None => {
                    let bucket = Bucket {
                        tokens: TOKEN_MAX - PACKET_COST,
                        last_time: Instant::from_nanos(now),
                        used: false,
                    };
                    model.insert(key, bucket);
                    true
                }
            };
            assert_eq!(
                rl.allow(Instant::from_nanos(now), src),
                expected,
                "step {step}"
            );
        }
        assert!(rl.gc_visited > 0);
    }

    #[test]
    fn debug_is_summary() {
        let rl = RateLimiter::new(4, seed());
        assert_eq!(
            alloc::format!("{rl:?}"),
            "RateLimiter { len: 0, max_entries: 4, .. }"
        );
    }
}
