//! Cryptokey routing: the allowed-IPs table (whitepaper §2, "Cryptokey Routing").
//!
//! An [`AllowedIps`] maps IPv4 and IPv6 prefixes to a value (a peer) and answers longest-prefix
//! matches. On send, the destination address of an outgoing packet selects the peer; on receive,
//! the source address of a decrypted packet must map back to the peer that sent it.
//!
//! Like the kernel's `allowedips.c`, each address family is a path-compressed binary trie. Every
//! node holds a prefix (its key with the bits past `cidr` cleared); a node's two children extend
//! that prefix by at least one bit and are chosen by bit number `cidr` of the address. A node with
//! no value is only a branch point and always has two children, so `n` entries take fewer than
//! `2n` nodes, and since `cidr` grows strictly downwards no path is longer than 33 (IPv4) or 129
//! (IPv6) nodes. IPv4 and IPv6 have separate tries: `10.0.0.0/8` and `::ffff:10.0.0.0/104` are
//! different entries, as in the kernel.
//!
//! A binary trie costs a dependent memory load per bit of branching (17 levels for 100k random
//! prefixes), so a lookup does not start at the root: a jump table indexed by up to 20 address
//! bits (see `Jump`) says where the walk would be after those bits, and a lookup in a table of
//! 100k random prefixes reads one table entry and one or two nodes.
//!
//! Nodes live in a `Vec` arena addressed by `u32` indices. Removal prunes nodes that no longer
//! carry a value or separate two subtrees; freed slots go on a free list and are reused, and the
//! arena is compacted once more than half of it is free, so memory stays proportional to the
//! number of entries under any insert/remove churn. Every walk is a loop; nothing recurses.
//!
//! Files: this one holds the types and the public [`AllowedIps`]; `trie.rs` the trie itself
//! (insert, remove, lookup, compaction, iteration), `jump.rs` the jump table and how the trie
//! keeps it current, `tests.rs` the tests.

use alloc::vec::Vec;
use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Arena index meaning "no node". Also bounds the arena: valid indices are below it.
const NIL: u32 = u32::MAX;

/// Address widths, as prefix lengths.
const V4_BITS: u8 = <u32 as Key>::BITS;
const V6_BITS: u8 = <u128 as Key>::BITS;

/// The arena is never compacted while fewer slots than this are free.
const COMPACT_MIN_FREE: usize = 1024;

/// A trie with fewer entries than this has no jump table.
const JUMP_MIN_LEN: usize = 16;

/// The jump table indexes at most this many bits (2^20 entries, 8 MiB).
const JUMP_MAX_BITS: u8 = 20;

/// `addr/cidr` with the host bits past `cidr` cleared, as the table stores it.
///
/// # Errors
///
/// [`InvalidPrefix`] if `cidr` exceeds 32 for IPv4 or 128 for IPv6.
pub fn canonical_prefix(addr: IpAddr, cidr: u8) -> Result<(IpAddr, u8), InvalidPrefix> {
    match addr {
        IpAddr::V4(a) if cidr <= V4_BITS => {
            Ok((IpAddr::V4(Ipv4Addr::from(u32::from(a).masked(cidr))), cidr))
        }
        IpAddr::V6(a) if cidr <= V6_BITS => {
            Ok((IpAddr::V6(Ipv6Addr::from(u128::from(a).masked(cidr))), cidr))
        }
        _ => Err(InvalidPrefix),
    }
}

/// The prefix length passed to [`AllowedIps::insert`] is longer than the address: more than 32
/// for IPv4 or more than 128 for IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InvalidPrefix;

impl fmt::Display for InvalidPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("prefix length exceeds the address width (32 for IPv4, 128 for IPv6)")
    }
}

impl core::error::Error for InvalidPrefix {}

/// An address as an unsigned integer, most significant bit first (network order).
trait Key: Copy + Eq {
    /// Address width in bits.
    const BITS: u8;

    /// The all-zeroes address.
    const ZERO: Self;

    /// `self` with every bit from position `cidr` on cleared; unchanged if `cidr >= BITS`.
    fn masked(self, cidr: u8) -> Self;

    /// Bit number `pos` counted from the most significant end (0 or 1); 0 if `pos >= BITS`.
    fn bit(self, pos: u8) -> usize;

    /// The number of leading bits `self` and `other` have in common (at most `BITS`).
    fn common_bits(self, other: Self) -> u8;

    /// Bits `start .. start + len` as an integer (`len <= 20`); 0 if `len == 0`.
    fn field(self, start: u8, len: u8) -> usize;

    /// `self` with bit number `pos` set; unchanged if `pos >= BITS`.
    fn with_bit(self, pos: u8) -> Self;
}

macro_rules! impl_key {
    ($ty:ty) => {
        impl Key for $ty {
            const BITS: u8 = <$ty>::BITS as u8;
            const ZERO: Self = 0;

            #[inline(always)]
            fn masked(self, cidr: u8) -> Self {
                let shift = u32::from(<Self as Key>::BITS.saturating_sub(cidr));
                self & <$ty>::MAX.checked_shl(shift).unwrap_or(0)
            }

            #[inline(always)]
            fn bit(self, pos: u8) -> usize {
                // Shifting right by BITS - 1 leaves a single bit, so the result is 0 or 1.
                (self.checked_shl(u32::from(pos)).unwrap_or(0) >> (<$ty>::BITS - 1)) as usize
            }

            #[inline]
            fn common_bits(self, other: Self) -> u8 {
                u8::try_from((self ^ other).leading_zeros()).unwrap_or(<Self as Key>::BITS)
            }

            #[inline(always)]
            fn field(self, start: u8, len: u8) -> usize {
                let shift = u32::from(<Self as Key>::BITS.saturating_sub(len));
                let top = self.checked_shl(u32::from(start)).unwrap_or(0);
                // Callers keep `len` at most JUMP_MAX_BITS, so the value fits a usize.
                top.checked_shr(shift).unwrap_or(0) as usize
            }

            #[inline]
            fn with_bit(self, pos: u8) -> Self {
                let high: $ty = 1 << (<$ty>::BITS - 1);
                self | high.checked_shr(u32::from(pos)).unwrap_or(0)
            }
        }
    };
}

impl_key!(u32);
impl_key!(u128);

/// One trie node. Its value, if any, is in the parallel `Trie::values` vector so that the nodes
/// the lookup walks stay small (16 bytes for IPv4).
#[derive(Debug, Clone, Copy)]
struct Node<K> {
    /// The prefix, with the bits from `cidr` on cleared.
    key: K,
    /// Subtrees whose next bit (bit `cidr`) is 0 and 1; `NIL` if absent. On a free slot,
    /// `children[0]` links the free list.
    children: [u32; 2],
    /// Prefix length.
    cidr: u8,
    /// Whether `values[index]` is `Some`; a copy kept here so the lookup touches only the node.
    has_value: bool,
}

impl<K: Key> Node<K> {
    fn new(key: K, cidr: u8, has_value: bool) -> Self {
        Node {
            key,
            children: [NIL, NIL],
            cidr,
            has_value,
        }
    }

    /// Whether `key` lies inside this node's prefix.
    #[inline(always)]
    fn contains(&self, key: K) -> bool {
        key.masked(self.cidr) == self.key
    }
}

/// Where a node hangs: the trie root, or child `bit` of node `parent`.
#[derive(Debug, Clone, Copy)]
enum Link {
    Root,
    Child { parent: u32, bit: usize },
}

/// One address family's path-compressed trie.
#[derive(Debug, Clone)]
struct Trie<K, T> {
    nodes: Vec<Node<K>>,
    values: Vec<Option<T>>,
    root: u32,
    free_head: u32,
    free_count: usize,
    len: usize,
    jump: Jump<K>,
}

/// Converts an arena index to a `Vec` position (`NIL` maps past the end of any arena on the
/// 32- and 64-bit targets WireGuard runs on).
#[inline(always)]
fn slot(idx: u32) -> usize {
    idx as usize
}

/// How the entry an update is about changed, for `Trie::update_jump`.
#[derive(Debug, Clone, Copy)]
enum Change {
    /// The node at this index now has a value it did not have.
    Gained(u32),
    /// The node at this index lost its value (and may have been freed).
    Lost(u32),
}

/// Where a lookup stands after consuming the bits of one jump-table bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct JumpEntry {
    /// The first node of the walk whose prefix is at least `Jump::depth` bits long, or `NIL`.
    node: u32,
    /// The deepest node with a value passed on the way there, or `NIL`.
    best: u32,
}

/// A direct-indexed shortcut over the top of the trie, in the spirit of the first level of an
/// LC-trie or DIR-24-8: the `bits` address bits that follow an anchor prefix index `entries`,
/// and each entry says where a walk from the root would be once it had consumed those bits.
/// A lookup inside the anchor starts there instead of at the root. The anchor is the longest
/// prefix holding at least 7/8 of the entries (the root for random prefixes, `10.0.0.0/16` for a
/// VPN's peers in that network), and `bits` is about log2 of the entries under it, so a bucket
/// holds one or two entries and the table takes at most 8 bytes per entry when built (32 before
/// a shrinking table is rebuilt).
///
/// The table is rebuilt when the trie doubles or quarters in size, when as many entries as half
/// its size at the last rebuild have been added outside the anchor, and after compaction. Between
/// rebuilds, an insertion or removal of `p/c` repaints only the buckets inside `p/c`: a walk
/// for any other bucket meets no new or freed node other than value-less branch nodes above
/// its bucket level, which do not change where it ends up.
#[derive(Debug, Clone)]
struct Jump<K> {
    anchor: K,
    anchor_cidr: u8,
    /// Index width; 0 when the table is off.
    bits: u8,
    entries: Vec<JumpEntry>,
    /// The trie's `len` at the last rebuild.
    sized_for: usize,
    /// Entries added outside the anchor since then.
    outside: usize,
}

/// Pre-order walk over a trie's node indices: a node, then its 0 subtree, then its 1 subtree.
/// The stack holds at most one pending sibling per level, so it never exceeds `BITS + 2` entries.
struct Preorder<'a, K, T> {
    trie: &'a Trie<K, T>,
    stack: Vec<u32>,
}

/// The cryptokey-routing table: IPv4 and IPv6 prefixes, each mapped to a value of type `T`
/// (a peer identifier), with longest-prefix-match lookup.
///
/// Entries are stored with their host bits cleared, as the kernel does: inserting
/// `10.0.0.1/24` stores `10.0.0.0/24`. IPv4 and IPv6 entries never match each other's
/// addresses, including IPv4-mapped IPv6 addresses.
#[derive(Clone)]
pub struct AllowedIps<T> {
    v4: Trie<u32, T>,
    v6: Trie<u128, T>,
}

impl<T: Copy + PartialEq> Default for AllowedIps<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Copy + PartialEq + fmt::Debug> fmt::Debug for AllowedIps<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl<T: Copy + PartialEq> AllowedIps<T> {
    /// An empty table. Does not allocate.
    pub const fn new() -> Self {
        AllowedIps {
            v4: Trie::new(),
            v6: Trie::new(),
        }
    }

    /// Maps the prefix `addr/cidr` to `value`, replacing and returning the value it had.
    ///
    /// Host bits of `addr` past `cidr` are ignored. Takes time proportional to the address width,
    /// plus, for a prefix shorter than most entries (a default route in a big table), up to one
    /// step per jump-table bucket it covers (at most 2^20). A table is limited to 2^32 - 1 trie
    /// nodes per address family (at least 2^31 entries, over 64 GiB); past that the insertion
    /// is dropped and `Ok(None)` returned.
    ///
    /// # Errors
    ///
    /// [`InvalidPrefix`] if `cidr` exceeds 32 for IPv4 or 128 for IPv6; the table is unchanged.
    pub fn insert(&mut self, addr: IpAddr, cidr: u8, value: T) -> Result<Option<T>, InvalidPrefix> {
        match addr {
            IpAddr::V4(a) if cidr <= V4_BITS => {
                Ok(self.v4.insert(u32::from(a).masked(cidr), cidr, value))
            }
            IpAddr::V6(a) if cidr <= V6_BITS => {
                Ok(self.v6.insert(u128::from(a).masked(cidr), cidr, value))
            }
            _ => Err(InvalidPrefix),
        }
    }

    /// Removes exactly the prefix `addr/cidr` (host bits ignored) and returns its value.
    /// Longer and shorter prefixes covering the same addresses are left alone. Costs the same
    /// as [`AllowedIps::insert`].
    pub fn remove(&mut self, addr: IpAddr, cidr: u8) -> Option<T> {
        match addr {
            IpAddr::V4(a) if cidr <= V4_BITS => self.v4.remove(u32::from(a).masked(cidr), cidr),
            IpAddr::V6(a) if cidr <= V6_BITS => self.v6.remove(u128::from(a).masked(cidr), cidr),
            _ => None,
        }
    }

    /// Removes every prefix mapped to `value` (a peer being removed) and returns how many there
    /// were. Takes time proportional to the size of the table.
    pub fn remove_by_value(&mut self, value: T) -> usize {
        self.v4.remove_by_value(value) + self.v6.remove_by_value(value)
    }

    /// The value of the longest prefix containing `addr`, if any.
    #[inline]
    pub fn lookup(&self, addr: IpAddr) -> Option<T> {
        match addr {
            IpAddr::V4(a) => self.v4.lookup(u32::from(a)),
            IpAddr::V6(a) => self.v6.lookup(u128::from(a)),
        }
    }

    /// The value of the longest IPv4 prefix containing `addr` (network byte order), if any.
    /// Does not allocate.
    #[inline]
    pub fn lookup_v4(&self, addr: [u8; 4]) -> Option<T> {
        self.v4.lookup(u32::from_be_bytes(addr))
    }

    /// The value of the longest IPv6 prefix containing `addr` (network byte order), if any.
    /// Does not allocate.
    #[inline]
    pub fn lookup_v6(&self, addr: [u8; 16]) -> Option<T> {
        self.v6.lookup(u128::from_be_bytes(addr))
    }

    /// Every entry as `(network address, prefix length, value)`: IPv4 first, then IPv6, each in
    /// ascending order of address and, for equal addresses, of prefix length.
    pub fn iter(&self) -> impl Iterator<Item = (IpAddr, u8, T)> + '_ {
        let v4 = self
            .v4
            .iter()
            .map(|(k, c, v)| (IpAddr::V4(Ipv4Addr::from(k)), c, v));
        let v6 = self
            .v6
            .iter()
            .map(|(k, c, v)| (IpAddr::V6(Ipv6Addr::from(k)), c, v));
        v4.chain(v6)
    }

    /// The prefixes mapped to `value`, in the order of [`AllowedIps::iter`].
    pub fn iter_value(&self, value: T) -> impl Iterator<Item = (IpAddr, u8)> + '_ {
        self.iter()
            .filter(move |&(_, _, v)| v == value)
            .map(|(addr, cidr, _)| (addr, cidr))
    }

    /// The number of prefixes in the table.
    pub fn len(&self) -> usize {
        self.v4.len + self.v6.len
    }

    /// Whether the table has no prefixes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes every prefix and releases the memory.
    pub fn clear(&mut self) {
        *self = Self::new();
    }
}

mod jump;
mod trie;

#[cfg(test)]
mod tests;
