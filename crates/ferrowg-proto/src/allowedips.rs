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

impl<K: Key, T: Copy + PartialEq> Trie<K, T> {
    const fn new() -> Self {
        Trie {
            nodes: Vec::new(),
            values: Vec::new(),
            root: NIL,
            free_head: NIL,
            free_count: 0,
            len: 0,
            jump: Jump::OFF,
        }
    }

    #[inline(always)]
    fn node(&self, idx: u32) -> Option<&Node<K>> {
        self.nodes.get(slot(idx))
    }

    fn value(&self, idx: u32) -> Option<T> {
        self.values.get(slot(idx)).copied().flatten()
    }

    fn target(&self, link: Link) -> u32 {
        match link {
            Link::Root => self.root,
            Link::Child { parent, bit } => self
                .node(parent)
                .and_then(|n| n.children.get(bit).copied())
                .unwrap_or(NIL),
        }
    }

    fn set_target(&mut self, link: Link, target: u32) {
        match link {
            Link::Root => self.root = target,
            Link::Child { parent, bit } => {
                if let Some(child) = self
                    .nodes
                    .get_mut(slot(parent))
                    .and_then(|n| n.children.get_mut(bit))
                {
                    *child = target;
                }
            }
        }
    }

    /// Sets child `bit` of node `parent` (which must be a live node) to `child`.
    fn set_child(&mut self, parent: u32, bit: usize, child: u32) {
        self.set_target(Link::Child { parent, bit }, child);
    }

    /// Whether `n` more nodes fit in the arena.
    fn has_room(&self, n: usize) -> bool {
        let unused = slot(NIL).saturating_sub(self.nodes.len());
        self.free_count.saturating_add(unused) >= n
    }

    /// Stores a node, reusing a free slot if there is one. The caller checks `has_room` first;
    /// if the arena is full anyway, returns `NIL` and stores nothing.
    fn alloc(&mut self, node: Node<K>, value: Option<T>) -> u32 {
        if let (Some(free), Some(v)) = (
            self.nodes.get_mut(slot(self.free_head)),
            self.values.get_mut(slot(self.free_head)),
        ) {
            let idx = self.free_head;
            self.free_head = free.children[0];
            self.free_count = self.free_count.saturating_sub(1);
            *free = node;
            *v = value;
            return idx;
        }
        match u32::try_from(self.nodes.len()) {
            Ok(idx) if idx != NIL => {
                self.nodes.push(node);
                self.values.push(value);
                idx
            }
            _ => NIL,
        }
    }

    /// Returns a node's slot to the free list. The node must already be unlinked.
    fn free(&mut self, idx: u32) {
        if let (Some(node), Some(v)) = (
            self.nodes.get_mut(slot(idx)),
            self.values.get_mut(slot(idx)),
        ) {
            node.children = [self.free_head, NIL];
            node.has_value = false;
            *v = None;
            self.free_head = idx;
            self.free_count += 1;
        }
    }

    /// Longest-prefix match of `key`.
    #[inline]
    fn lookup(&self, key: K) -> Option<T> {
        let (mut idx, mut best) = match self.jump.entry(key) {
            Some(entry) => (entry.node, entry.best),
            None => (self.root, NIL),
        };
        while let Some(node) = self.node(idx) {
            if !node.contains(key) {
                break;
            }
            if node.has_value {
                best = idx;
            }
            // `bit` is 0 or 1; at cidr == BITS it is 0 and children[0] is NIL.
            idx = node.children[key.bit(node.cidr)];
        }
        self.value(best)
    }

    /// Inserts or replaces `key/cidr`; `key` is already masked and `cidr <= K::BITS`. Returns the
    /// previous value. If the arena is full (2^32 - 1 nodes), stores nothing and returns `None`.
    fn insert(&mut self, key: K, cidr: u8, value: T) -> Option<T> {
        let (old, idx) = self.insert_node(key, cidr, value);
        if old.is_none() && idx != NIL {
            self.update_jump(key, cidr, Change::Gained(idx));
        }
        old
    }

    /// The trie part of `insert`: returns the previous value and the index of the node that now
    /// holds the entry (`NIL` if the arena was full).
    fn insert_node(&mut self, key: K, cidr: u8, value: T) -> (Option<T>, u32) {
        let mut link = Link::Root;
        // Each step descends to a node with a longer prefix, so this runs at most BITS + 2 times.
        loop {
            let idx = self.target(link);
            let Some(node) = self.node(idx).copied() else {
                return (None, self.attach_leaf(link, key, cidr, value));
            };
            let common = node.key.common_bits(key).min(node.cidr).min(cidr);
            if common < node.cidr {
                return (None, self.split(link, idx, common, key, cidr, value));
            }
            if node.cidr == cidr {
                return (self.replace_value(idx, value), idx);
            }
            link = Link::Child {
                parent: idx,
                bit: key.bit(node.cidr),
            };
        }
    }

    /// Hangs a new leaf `key/cidr` at the empty `link`; returns it (`NIL` if the arena is full).
    fn attach_leaf(&mut self, link: Link, key: K, cidr: u8, value: T) -> u32 {
        if !self.has_room(1) {
            return NIL;
        }
        let leaf = self.alloc(Node::new(key, cidr, true), Some(value));
        self.set_target(link, leaf);
        self.len += 1;
        leaf
    }

    /// Inserts `key/cidr` above node `idx` at `link`, where the two prefixes agree on only their
    /// first `common` bits and `common < cidr of idx`. The new entry either becomes the parent
    /// of `idx` (it is a prefix of it) or its sibling under a new branch node. Returns the new
    /// entry's node (`NIL` if the arena is full).
    fn split(&mut self, link: Link, idx: u32, common: u8, key: K, cidr: u8, value: T) -> u32 {
        let Some(old) = self.node(idx).copied() else {
            return NIL;
        };
        if !self.has_room(2) {
            return NIL;
        }
        let entry = self.alloc(Node::new(key, cidr, true), Some(value));
        let top = if common == cidr {
            self.set_child(entry, old.key.bit(cidr), idx);
            entry
        } else {
            let branch = self.alloc(Node::new(key.masked(common), common, false), None);
            self.set_child(branch, key.bit(common), entry);
            self.set_child(branch, old.key.bit(common), idx);
            branch
        };
        self.set_target(link, top);
        self.len += 1;
        entry
    }

    /// Stores `value` on the existing node `idx` (which may have been a bare branch node).
    fn replace_value(&mut self, idx: u32, value: T) -> Option<T> {
        let (Some(node), Some(slot_value)) = (
            self.nodes.get_mut(slot(idx)),
            self.values.get_mut(slot(idx)),
        ) else {
            return None;
        };
        node.has_value = true;
        let old = slot_value.replace(value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// Removes exactly `key/cidr` (`key` masked, `cidr <= K::BITS`), pruning the trie.
    fn remove(&mut self, key: K, cidr: u8) -> Option<T> {
        let mut parent_link = None;
        let mut link = Link::Root;
        loop {
            let idx = self.target(link);
            let node = *self.node(idx)?;
            if node.cidr > cidr || !node.contains(key) {
                return None;
            }
            if node.cidr == cidr {
                break;
            }
            parent_link = Some(link);
            link = Link::Child {
                parent: idx,
                bit: key.bit(node.cidr),
            };
        }
        let idx = self.target(link);
        let old = self.values.get_mut(slot(idx))?.take()?;
        if let Some(node) = self.nodes.get_mut(slot(idx)) {
            node.has_value = false;
        }
        self.len = self.len.saturating_sub(1);
        self.prune(link, parent_link);
        if !self.maybe_compact() {
            self.update_jump(key, cidr, Change::Lost(idx));
        }
        Some(old)
    }

    /// Restores the invariants after the node at `link` lost its value: a childless node goes
    /// (and then its parent may be a branch with one child left), a node with one child is
    /// replaced by that child, and a node with two children stays as a branch.
    fn prune(&mut self, link: Link, parent_link: Option<Link>) {
        let idx = self.target(link);
        let Some(node) = self.node(idx) else {
            return;
        };
        if node.children == [NIL, NIL] {
            self.set_target(link, NIL);
            self.free(idx);
            if let Some(parent_link) = parent_link {
                self.splice_out(parent_link);
            }
        } else {
            self.splice_out(link);
        }
    }

    /// If the node at `link` has no value and a single child, replaces it by that child.
    fn splice_out(&mut self, link: Link) {
        let idx = self.target(link);
        let Some(node) = self.node(idx) else {
            return;
        };
        if node.has_value {
            return;
        }
        let only = match node.children {
            [NIL, NIL] => NIL,
            [child, NIL] | [NIL, child] => child,
            _ => return,
        };
        self.set_target(link, only);
        self.free(idx);
    }

    /// Rebuilds the arena without free slots (and the jump table, whose node indices change)
    /// once more than half of it is free. Returns whether it did.
    fn maybe_compact(&mut self) -> bool {
        let compact = self.free_count >= COMPACT_MIN_FREE && self.free_count > self.nodes.len() / 2;
        if compact {
            self.compact();
            self.rebuild_jump();
        }
        compact
    }

    /// Copies the live nodes into fresh, exactly sized vectors in breadth-first order (which
    /// also puts the hot top of the trie in few cache lines).
    fn compact(&mut self) {
        let live = self.nodes.len().saturating_sub(self.free_count);
        let mut nodes: Vec<Node<K>> = Vec::with_capacity(live);
        let mut values = Vec::with_capacity(live);
        if let Some(root) = self.node(self.root) {
            nodes.push(*root);
            values.push(self.value(self.root));
        }
        let mut next = 0;
        while let Some(node) = nodes.get(next).copied() {
            let mut children = node.children;
            for child in &mut children {
                if let Some(c) = self.node(*child) {
                    values.push(self.value(*child));
                    // Fewer nodes than the old arena, whose indices all fitted in a u32.
                    *child = u32::try_from(nodes.len()).unwrap_or(NIL);
                    nodes.push(*c);
                }
            }
            if let Some(n) = nodes.get_mut(next) {
                n.children = children;
            }
            next += 1;
        }
        self.root = if nodes.is_empty() { NIL } else { 0 };
        self.nodes = nodes;
        self.values = values;
        self.free_head = NIL;
        self.free_count = 0;
    }

    /// The reachable nodes, parents before children and 0 subtrees before 1 subtrees.
    fn preorder(&self) -> Preorder<'_, K, T> {
        let stack = if self.root == NIL {
            Vec::new()
        } else {
            alloc::vec![self.root]
        };
        Preorder { trie: self, stack }
    }

    /// All entries, in ascending order of (address, prefix length).
    fn iter(&self) -> impl Iterator<Item = (K, u8, T)> + '_ {
        self.preorder().filter_map(|idx| {
            let node = self.node(idx)?;
            Some((node.key, node.cidr, self.value(idx)?))
        })
    }

    /// The entries mapping to `value`.
    fn keys_of(&self, value: T) -> Vec<(K, u8)> {
        self.iter()
            .filter(|&(_, _, v)| v == value)
            .map(|(k, c, _)| (k, c))
            .collect()
    }

    /// Removes every entry mapping to `value`; returns how many there were.
    fn remove_by_value(&mut self, value: T) -> usize {
        let doomed = self.keys_of(value);
        for &(key, cidr) in &doomed {
            self.remove(key, cidr);
        }
        doomed.len()
    }
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

impl<K: Key> Jump<K> {
    const OFF: Self = Jump {
        anchor: K::ZERO,
        anchor_cidr: 0,
        bits: 0,
        entries: Vec::new(),
        sized_for: 0,
        outside: 0,
    };

    /// The prefix length a bucket stands for.
    fn depth(&self) -> u8 {
        self.anchor_cidr.saturating_add(self.bits)
    }

    /// The entry for `key`'s bucket, if `key` lies inside the anchor and the table is on.
    #[inline(always)]
    fn entry(&self, key: K) -> Option<&JumpEntry> {
        if key.masked(self.anchor_cidr) != self.anchor {
            return None;
        }
        self.entries.get(key.field(self.anchor_cidr, self.bits))
    }

    /// The buckets of the block `block/level` (`anchor_cidr <= level <= depth`), as a range.
    fn range(&self, block: K, level: u8) -> core::ops::Range<usize> {
        let start = block.field(self.anchor_cidr, self.bits);
        let len = 1usize
            .checked_shl(u32::from(self.depth().saturating_sub(level)))
            .unwrap_or(0);
        start..start.saturating_add(len)
    }

    /// Sets every bucket in `range` (clipped to the table) to a dead end with `best`.
    fn fill(&mut self, range: core::ops::Range<usize>, best: u32) {
        let end = range.end.min(self.entries.len());
        if let Some(entries) = self.entries.get_mut(range.start.min(end)..end) {
            entries.fill(JumpEntry { node: NIL, best });
        }
    }

    /// In `range`, replaces `best == old` by `new`: where the removed entry `old` was the
    /// deepest, nothing between it and the bucket had a value, so the next one up takes over.
    fn replace_best(&mut self, range: core::ops::Range<usize>, old: u32, new: u32) {
        for entry in self.entries.get_mut(range).into_iter().flatten() {
            if entry.best == old {
                entry.best = new;
            }
        }
    }

    /// The block of buckets inside `key/cidr`, as a prefix, or `None` if there are none.
    fn affected(&self, key: K, cidr: u8) -> Option<(K, u8)> {
        if self.bits == 0 {
            return None;
        }
        if cidr <= self.anchor_cidr {
            let inside = self.anchor.masked(cidr) == key;
            return inside.then_some((self.anchor, self.anchor_cidr));
        }
        let level = cidr.min(self.depth());
        let inside = key.masked(self.anchor_cidr) == self.anchor;
        inside.then_some((key.masked(level), level))
    }
}

impl<K: Key, T: Copy + PartialEq> Trie<K, T> {
    /// Brings the jump table up to date after the entry `key/cidr` was added or removed. An
    /// entry longer than the buckets changes one bucket, which is recomputed. A shorter one
    /// leaves the nodes the buckets point to alone (nodes above bucket depth are passed, never
    /// stopped at), so only the `best` of the buckets inside it changes.
    fn update_jump(&mut self, key: K, cidr: u8, change: Change) {
        let grown = self.len >= JUMP_MIN_LEN.max(self.jump.sized_for.saturating_mul(2));
        let shrunk = self.jump.bits > 0 && self.len < self.jump.sized_for / 4;
        if grown || shrunk {
            self.rebuild_jump();
            return;
        }
        let Some((block, level)) = self.jump.affected(key, cidr) else {
            if matches!(change, Change::Gained(_)) && self.jump.bits > 0 {
                self.jump.outside += 1;
                if self.jump.outside > self.jump.sized_for / 2 {
                    self.rebuild_jump();
                }
            }
            return;
        };
        if cidr >= self.jump.depth() {
            self.repaint(block, level);
            return;
        }
        let range = self.jump.range(block, level);
        match change {
            Change::Gained(idx) => self.raise_best(range, idx, cidr),
            Change::Lost(idx) => {
                let (_, above) = self.walk_to(key, cidr);
                self.jump.replace_best(range, idx, above);
            }
        }
    }

    /// Makes the new entry node `idx` (`cidr` bits long) the `best` of the buckets in `range`
    /// whose `best` is shorter: those all contain it, so it is now the deepest.
    fn raise_best(&mut self, range: core::ops::Range<usize>, idx: u32, cidr: u8) {
        let Trie { nodes, jump, .. } = self;
        for entry in jump.entries.get_mut(range).into_iter().flatten() {
            if nodes.get(slot(entry.best)).is_none_or(|n| n.cidr < cidr) {
                entry.best = idx;
            }
        }
    }

    /// Walks from the root towards `key` through the nodes shorter than `level` bits, which
    /// every address of the block `key/level` passes alike. Returns the first node at least
    /// `level` bits long (`NIL` if the walk leaves `key`'s path first) and the deepest node with
    /// a value on the way (`NIL` if none).
    fn walk_to(&self, key: K, level: u8) -> (u32, u32) {
        let mut idx = self.root;
        let mut best = NIL;
        while let Some(node) = self.node(idx) {
            if node.cidr >= level {
                break;
            }
            if !node.contains(key) {
                return (NIL, best);
            }
            if node.has_value {
                best = idx;
            }
            idx = node.children[key.bit(node.cidr)];
        }
        (idx, best)
    }

    /// Chooses a new anchor and size for the jump table and fills it.
    fn rebuild_jump(&mut self) {
        self.jump = Jump::OFF;
        self.jump.sized_for = self.len;
        if self.len < JUMP_MIN_LEN {
            return;
        }
        let (anchor, anchor_cidr, count) = self.choose_anchor();
        let bits = u8::try_from(count.max(1).ilog2())
            .unwrap_or(JUMP_MAX_BITS)
            .min(JUMP_MAX_BITS)
            .min(K::BITS.saturating_sub(anchor_cidr));
        if bits == 0 {
            return;
        }
        self.jump = Jump {
            anchor,
            anchor_cidr,
            bits,
            entries: alloc::vec![JumpEntry { node: NIL, best: NIL }; 1 << bits],
            sized_for: self.len,
            outside: 0,
        };
        self.repaint(anchor, anchor_cidr);
    }

    /// The deepest node whose subtree holds at least 7/8 of the entries, as a prefix, and the
    /// number of entries under it.
    fn choose_anchor(&self) -> (K, u8, usize) {
        let order: Vec<u32> = self.preorder().collect();
        let mut count = alloc::vec![0usize; self.nodes.len()];
        for &idx in order.iter().rev() {
            if let Some(node) = self.node(idx) {
                let below: usize = node
                    .children
                    .iter()
                    .filter_map(|&c| count.get(slot(c)))
                    .sum();
                if let Some(n) = count.get_mut(slot(idx)) {
                    *n = below + usize::from(node.has_value);
                }
            }
        }
        let count_of = |idx: u32| count.get(slot(idx)).copied().unwrap_or(0);
        let mut idx = self.root;
        while let Some(node) = self.node(idx) {
            let heavy = if count_of(node.children[0]) >= count_of(node.children[1]) {
                node.children[0]
            } else {
                node.children[1]
            };
            if count_of(heavy).saturating_mul(8) < self.len.saturating_mul(7) {
                return (node.key, node.cidr, count_of(idx));
            }
            idx = heavy;
        }
        (K::ZERO, 0, self.len)
    }

    /// Recomputes the jump entries of the buckets inside `block/level`.
    fn repaint(&mut self, block: K, level: u8) {
        let (start, best) = self.walk_to(block, level);
        self.paint(start, best, block, level);
    }

    /// Fills the buckets of `block/level`, whose walks all reach node `start` (`NIL`, or a node
    /// at least `level` bits long) having passed `best`. Each bucket is written once, by the
    /// deepest node above bucket depth that covers it. The stack holds at most one pending
    /// sibling per level, so it stays under `JUMP_MAX_BITS + 2` entries.
    fn paint(&mut self, start: u32, best: u32, block: K, level: u8) {
        let depth = self.jump.depth();
        let mut stack = alloc::vec![(start, best, block, level)];
        while let Some((idx, best, block, level)) = stack.pop() {
            let whole = self.jump.range(block, level);
            let node = match self.node(idx) {
                Some(node) if node.key.masked(level) == block => *node,
                _ => {
                    self.jump.fill(whole, best);
                    continue;
                }
            };
            if node.cidr >= depth {
                self.jump.fill(whole, best);
                let bucket = node.key.field(self.jump.anchor_cidr, self.jump.bits);
                if let Some(entry) = self.jump.entries.get_mut(bucket) {
                    *entry = JumpEntry { node: idx, best };
                }
                continue;
            }
            let inner = self.jump.range(node.key, node.cidr);
            self.jump.fill(whole.start..inner.start, best);
            self.jump.fill(inner.end..whole.end, best);
            let best = if node.has_value { idx } else { best };
            let next = node.cidr.saturating_add(1);
            stack.push((node.children[1], best, node.key.with_bit(node.cidr), next));
            stack.push((node.children[0], best, node.key, next));
        }
    }
}

/// Pre-order walk over a trie's node indices: a node, then its 0 subtree, then its 1 subtree.
/// The stack holds at most one pending sibling per level, so it never exceeds `BITS + 2` entries.
struct Preorder<'a, K, T> {
    trie: &'a Trie<K, T>,
    stack: Vec<u32>,
}

impl<K: Key, T: Copy + PartialEq> Iterator for Preorder<'_, K, T> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let idx = self.stack.pop()?;
        if let Some(node) = self.trie.node(idx) {
            self.stack
                .extend(node.children.iter().rev().filter(|&&c| c != NIL));
        }
        Some(idx)
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(a, b, c, d))
    }

    fn v6(words: [u32; 4]) -> IpAddr {
        let [a, b, c, d] = words;
        let n =
            (u128::from(a) << 96) | (u128::from(b) << 64) | (u128::from(c) << 32) | u128::from(d);
        IpAddr::V6(Ipv6Addr::from(n))
    }

    impl<K: Key + fmt::Debug, T: Copy + PartialEq> Trie<K, T> {
        /// Asserts the structural invariants; returns the number of reachable nodes.
        fn check(&self) -> usize {
            assert_eq!(self.nodes.len(), self.values.len());
            let mut reachable = 0;
            let mut with_value = 0;
            let mut stack = vec![(self.root, 0u8, None::<Node<K>>, 0usize)];
            while let Some((idx, depth, parent, bit)) = stack.pop() {
                let Some(node) = self.node(idx).copied() else {
                    assert_eq!(idx, NIL, "dangling index");
                    continue;
                };
                reachable += 1;
                assert!(depth <= K::BITS + 1, "path too long");
                assert!(node.cidr <= K::BITS);
                assert_eq!(node.key, node.key.masked(node.cidr), "unmasked key");
                assert_eq!(node.has_value, self.value(idx).is_some());
                if node.has_value {
                    with_value += 1;
                } else {
                    assert!(!node.children.contains(&NIL), "branch without two children");
                }
                if let Some(p) = parent {
                    assert!(node.cidr > p.cidr);
                    assert!(p.contains(node.key));
                    assert_eq!(node.key.bit(p.cidr), bit);
                }
                for (b, &child) in node.children.iter().enumerate() {
                    stack.push((child, depth + 1, Some(node), b));
                }
            }
            assert_eq!(with_value, self.len);
            assert_eq!(reachable + self.free_count, self.nodes.len());
            let mut free = 0;
            let mut idx = self.free_head;
            while let Some(node) = self.node(idx) {
                free += 1;
                assert!(free <= self.free_count, "free list cycle");
                idx = node.children[0];
            }
            assert_eq!(free, self.free_count);
            assert!(self.nodes.len() <= 2 * self.len + self.free_count);
            self.check_jump();
            reachable
        }

        /// Asserts that every jump entry is where a walk from the root would be.
        fn check_jump(&self) {
            let jump = &self.jump;
            if jump.bits == 0 {
                assert!(jump.entries.is_empty());
                assert!(self.len < JUMP_MIN_LEN.max(2 * jump.sized_for));
                return;
            }
            assert_eq!(jump.entries.len(), 1 << jump.bits);
            assert!(jump.outside <= jump.sized_for / 2);
            assert!(jump.entries.len() <= 4 * self.len, "jump table oversized");
            let depth = jump.depth();
            for (i, entry) in jump.entries.iter().enumerate() {
                let mut block = jump.anchor;
                for b in 0..jump.bits {
                    if i & (1 << (jump.bits - 1 - b)) != 0 {
                        block = block.with_bit(jump.anchor_cidr + b);
                    }
                }
                assert_eq!(block.field(jump.anchor_cidr, jump.bits), i);
                let (mut idx, mut best) = (self.root, NIL);
                while let Some(node) = self.node(idx) {
                    if node.cidr >= depth || !node.contains(block) {
                        break;
                    }
                    if node.has_value {
                        best = idx;
                    }
                    idx = node.children[block.bit(node.cidr)];
                }
                if self.node(idx).is_some_and(|n| n.key.masked(depth) != block) {
                    idx = NIL;
                }
                assert_eq!(*entry, JumpEntry { node: idx, best }, "bucket {i}");
            }
        }
    }

    impl<T: Copy + PartialEq> AllowedIps<T> {
        fn check(&self) {
            self.v4.check();
            self.v6.check();
        }
    }

    #[test]
    fn kernel_selftest_lookups() {
        let mut t = AllowedIps::new();
        let ins = |t: &mut AllowedIps<char>, a, c, v| {
            t.insert(a, c, v).expect("valid prefix");
        };
        ins(&mut t, v4(192, 168, 4, 0), 24, 'a');
        ins(&mut t, v4(192, 168, 4, 4), 32, 'b');
        ins(&mut t, v4(192, 168, 0, 0), 16, 'c');
        ins(&mut t, v4(192, 95, 5, 64), 27, 'd');
        ins(&mut t, v4(192, 95, 5, 65), 27, 'c'); // replaces d, host bit masked
        ins(
            &mut t,
            v6([0x2607_5300, 0x6000_6b00, 0, 0xc05f_0543]),
            128,
            'd',
        );
        ins(&mut t, v6([0x2607_5300, 0x6000_6b00, 0, 0]), 64, 'c');
        ins(&mut t, v4(0, 0, 0, 0), 0, 'e');
        ins(&mut t, v6([0; 4]), 0, 'e');
        ins(&mut t, v6([0; 4]), 0, 'f'); // replaces e
        ins(&mut t, v6([0x2404_6800, 0, 0, 0]), 32, 'g');
        ins(
            &mut t,
            v6([0x2404_6800, 0x4004_0800, 0xdead_beef, 0xdead_beef]),
            64,
            'h',
        );
        ins(
            &mut t,
            v6([0x2404_6800, 0x4004_0800, 0xdead_beef, 0xdead_beef]),
            128,
            'a',
        );
        ins(
            &mut t,
            v6([0x2444_6800, 0x40e4_0800, 0xdeae_beef, 0x0def_beef]),
            128,
            'c',
        );
        ins(
            &mut t,
            v6([0x2444_6800, 0xf0e4_0800, 0xeeae_beef, 0]),
            98,
            'b',
        );
        ins(&mut t, v4(64, 15, 112, 0), 20, 'g');
        ins(&mut t, v4(64, 15, 123, 211), 25, 'h');
        ins(&mut t, v4(10, 0, 0, 0), 25, 'a');
        ins(&mut t, v4(10, 0, 0, 128), 25, 'b');
        ins(&mut t, v4(10, 1, 0, 0), 30, 'a');
        ins(&mut t, v4(10, 1, 0, 4), 30, 'b');
        ins(&mut t, v4(10, 1, 0, 8), 29, 'c');
        ins(&mut t, v4(10, 1, 0, 16), 29, 'd');
        t.check();
        let cases = [
            (v4(192, 168, 4, 20), 'a'),
            (v4(192, 168, 4, 0), 'a'),
            (v4(192, 168, 4, 4), 'b'),
            (v4(192, 168, 200, 182), 'c'),
            (v4(192, 95, 5, 68), 'c'),
            (v4(192, 95, 5, 96), 'e'),
            (v6([0x2607_5300, 0x6000_6b00, 0, 0xc05f_0543]), 'd'),
            (v6([0x2607_5300, 0x6000_6b00, 0, 0xc02e_01ee]), 'c'),
            (v6([0x2607_5300, 0x6000_6b01, 0, 0]), 'f'),
            (v6([0x2404_6800, 0x4004_0806, 0, 0x1006]), 'g'),
            (v6([0x2404_6800, 0x4004_0806, 0x1234, 0x5678]), 'g'),
            (v6([0x2404_67ff, 0x4004_0806, 0x1234, 0x5678]), 'f'),
            (v6([0x2404_6801, 0x4004_0806, 0x1234, 0x5678]), 'f'),
            (v6([0x2404_6800, 0x4004_0800, 0x1234, 0x5678]), 'h'),
            (v6([0x2404_6800, 0x4004_0800, 0, 0]), 'h'),
            (
                v6([0x2404_6800, 0x4004_0800, 0x1010_1010, 0x1010_1010]),
                'h',
            ),
            (
                v6([0x2404_6800, 0x4004_0800, 0xdead_beef, 0xdead_beef]),
                'a',
            ),
            (v4(64, 15, 116, 26), 'g'),
            (v4(64, 15, 127, 3), 'g'),
            (v4(64, 15, 123, 1), 'g'),
            (v4(64, 15, 123, 128), 'h'),
            (v4(64, 15, 123, 129), 'h'),
            (v4(10, 0, 0, 52), 'a'),
            (v4(10, 0, 0, 220), 'b'),
            (v4(10, 1, 0, 2), 'a'),
            (v4(10, 1, 0, 6), 'b'),
            (v4(10, 1, 0, 10), 'c'),
            (v4(10, 1, 0, 20), 'd'),
        ];
        for (addr, want) in cases {
            assert_eq!(t.lookup(addr), Some(want), "{addr}");
        }
        assert_eq!(t.len(), 21);
    }

    #[test]
    fn overlapping_prefixes_pick_longest() {
        let mut t = AllowedIps::new();
        for (cidr, v) in [(8, 1), (16, 2), (24, 3), (32, 4)] {
            assert_eq!(t.insert(v4(10, 1, 2, 3), cidr, v), Ok(None));
        }
        assert_eq!(t.lookup_v4([10, 1, 2, 3]), Some(4));
        assert_eq!(t.lookup_v4([10, 1, 2, 4]), Some(3));
        assert_eq!(t.lookup_v4([10, 1, 3, 3]), Some(2));
        assert_eq!(t.lookup_v4([10, 2, 2, 3]), Some(1));
        assert_eq!(t.lookup_v4([11, 1, 2, 3]), None);
        t.check();
    }

    #[test]
    fn default_routes_are_per_family() {
        let mut t = AllowedIps::new();
        t.insert(v4(0, 0, 0, 0), 0, 4).expect("valid");
        t.insert(v6([0; 4]), 0, 6).expect("valid");
        assert_eq!(t.lookup_v4([1, 2, 3, 4]), Some(4));
        assert_eq!(t.lookup_v4([255; 4]), Some(4));
        assert_eq!(t.lookup_v6([0xff; 16]), Some(6));
        assert_eq!(t.remove(v4(0, 0, 0, 0), 0), Some(4));
        assert_eq!(t.lookup_v4([1, 2, 3, 4]), None);
        assert_eq!(t.lookup_v6([0; 16]), Some(6));
        assert_eq!(t.len(), 1);
        t.check();
    }

    #[test]
    fn host_bits_are_masked() {
        let mut t = AllowedIps::new();
        assert_eq!(t.insert(v4(10, 0, 0, 1), 24, 1), Ok(None));
        assert_eq!(t.iter().collect::<Vec<_>>(), [(v4(10, 0, 0, 0), 24, 1)]);
        assert_eq!(t.insert(v4(10, 0, 0, 77), 24, 2), Ok(Some(1)));
        let six = v6([0x2001_0db8, 0xffff_ffff, 0xffff_ffff, 0xffff_ffff]);
        assert_eq!(t.insert(six, 33, 3), Ok(None));
        assert_eq!(
            t.iter_value(3).collect::<Vec<_>>(),
            [(v6([0x2001_0db8, 0x8000_0000, 0, 0]), 33)]
        );
        assert_eq!(t.remove(v4(10, 0, 0, 200), 24), Some(2));
        assert_eq!(t.len(), 1);
        t.check();
    }

    #[test]
    fn replace_keeps_len() {
        let mut t = AllowedIps::new();
        let p = v6([0xfd00_0000, 0, 0, 1]);
        assert_eq!(t.insert(p, 128, 1), Ok(None));
        assert_eq!(t.insert(p, 128, 2), Ok(Some(1)));
        assert_eq!(t.insert(p, 128, 2), Ok(Some(2)));
        assert_eq!(t.len(), 1);
        assert_eq!(t.lookup(p), Some(2));
    }

    #[test]
    fn remove_is_exact() {
        let mut t = AllowedIps::new();
        for (cidr, v) in [(8, 1), (16, 2), (24, 3)] {
            t.insert(v4(10, 1, 2, 0), cidr, v).expect("valid");
        }
        // 10.0.0.0/9 is only a branch point once 10.128.0.0/9 exists: not an entry.
        t.insert(v4(10, 128, 0, 0), 9, 4).expect("valid");
        assert_eq!(t.remove(v4(10, 1, 2, 0), 12), None);
        assert_eq!(t.remove(v4(10, 1, 2, 0), 32), None);
        assert_eq!(t.remove(v6([0x0a01_0200, 0, 0, 0]), 16), None);
        assert_eq!(t.remove(v4(10, 1, 0, 0), 16), Some(2));
        assert_eq!(t.remove(v4(10, 1, 0, 0), 16), None);
        assert_eq!(t.lookup_v4([10, 1, 2, 9]), Some(3));
        assert_eq!(t.lookup_v4([10, 1, 3, 9]), Some(1));
        assert_eq!(t.lookup_v4([10, 200, 3, 9]), Some(4));
        t.check();
        assert_eq!(t.remove(v4(10, 0, 0, 0), 8), Some(1));
        assert_eq!(t.lookup_v4([10, 1, 3, 9]), None);
        assert_eq!(t.remove(v4(10, 1, 2, 0), 24), Some(3));
        assert_eq!(t.remove(v4(10, 128, 0, 0), 9), Some(4));
        assert!(t.is_empty());
        assert_eq!(t.v4.root, NIL);
        t.check();
    }

    #[test]
    fn remove_by_value_drops_all_of_one_peer() {
        let mut t = AllowedIps::new();
        t.insert(v4(10, 0, 0, 0), 8, 1).expect("valid");
        t.insert(v4(10, 1, 0, 0), 16, 2).expect("valid");
        t.insert(v4(10, 1, 1, 0), 24, 1).expect("valid");
        t.insert(v6([0xfd00_0000, 0, 0, 0]), 16, 1).expect("valid");
        t.insert(v6([0xfd00_0000, 1, 0, 0]), 64, 2).expect("valid");
        let ones: Vec<_> = t.iter_value(1).collect();
        assert_eq!(
            ones,
            [
                (v4(10, 0, 0, 0), 8),
                (v4(10, 1, 1, 0), 24),
                (v6([0xfd00_0000, 0, 0, 0]), 16)
            ]
        );
        assert_eq!(t.remove_by_value(1), 3);
        assert_eq!(t.remove_by_value(1), 0);
        assert_eq!(t.len(), 2);
        assert_eq!(t.lookup_v4([10, 1, 1, 1]), Some(2));
        assert_eq!(t.lookup_v4([10, 2, 1, 1]), None);
        assert_eq!(t.iter_value(1).count(), 0);
        t.check();
    }

    #[test]
    fn v4_and_v4_mapped_v6_are_distinct() {
        let mut t = AllowedIps::new();
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped());
        t.insert(v4(10, 0, 0, 1), 32, 4).expect("valid");
        assert_eq!(t.lookup(mapped), None);
        t.insert(mapped, 128, 6).expect("valid");
        assert_eq!(t.lookup(v4(10, 0, 0, 1)), Some(4));
        assert_eq!(t.lookup(mapped), Some(6));
        assert_eq!(t.remove(v4(10, 0, 0, 1), 32), Some(4));
        assert_eq!(t.lookup(mapped), Some(6));
    }

    #[test]
    fn invalid_prefix_is_rejected() {
        let mut t = AllowedIps::new();
        assert_eq!(t.insert(v4(10, 0, 0, 0), 33, 1), Err(InvalidPrefix));
        assert_eq!(t.insert(v6([0; 4]), 129, 1), Err(InvalidPrefix));
        assert_eq!(t.insert(v6([0; 4]), u8::MAX, 1), Err(InvalidPrefix));
        assert!(t.is_empty());
        assert_eq!(t.remove(v4(10, 0, 0, 0), 33), None);
        assert_eq!(t.remove(v6([0; 4]), 255), None);
        assert!(!alloc::format!("{InvalidPrefix}").is_empty());
    }

    #[test]
    fn every_v6_prefix_length_of_one_address() {
        let mut t = AllowedIps::new();
        let addr = [0xa5; 16];
        for cidr in 0..=128u8 {
            t.insert(IpAddr::V6(addr.into()), cidr, cidr)
                .expect("valid");
        }
        assert_eq!(t.v6.check(), 129);
        for cidr in 0..=128u8 {
            let mut probe = u128::from_be_bytes(addr);
            if cidr < 128 {
                probe ^= 1 << (127 - cidr); // differ first at bit `cidr`
            }
            assert_eq!(t.lookup_v6(probe.to_be_bytes()), Some(cidr));
        }
        for cidr in (0..=128u8).rev() {
            assert_eq!(t.remove(IpAddr::V6(addr.into()), cidr), Some(cidr));
            t.check();
        }
        assert!(t.is_empty());
    }

    #[test]
    fn churn_reuses_slots_and_compacts() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut t = AllowedIps::new();
        let mut live = Vec::new();
        for i in 0..200_000u32 {
            if live.len() < 500 || rng.gen_bool(0.5) {
                let p = (
                    v4(10, rng.gen(), rng.gen(), rng.gen()),
                    rng.gen_range(8..=32),
                );
                t.insert(p.0, p.1, i).expect("valid");
                live.push(p);
            } else {
                let p = live.swap_remove(rng.gen_range(0..live.len()));
                t.remove(p.0, p.1);
            }
            assert!(
                t.v4.nodes.len() <= 2 * 2_000 + COMPACT_MIN_FREE,
                "arena grew"
            );
        }
        t.check();
        for p in live.drain(..) {
            t.remove(p.0, p.1);
        }
        assert!(t.is_empty());
        assert!(t.v4.nodes.len() <= COMPACT_MIN_FREE);
        t.check();
    }

    /// 2^20 peers with one /32 each (2^16 in debug builds, to keep them quick), then every peer
    /// removed.
    #[test]
    fn a_million_host_routes() {
        const PEERS: u32 = if cfg!(debug_assertions) {
            1 << 16
        } else {
            1 << 20
        };
        // Multiplying by an odd constant permutes u32, so the addresses are distinct.
        let addr = |i: u32| IpAddr::V4(i.wrapping_mul(0x9e37_79b9).into());
        let mut t = AllowedIps::new();
        for i in 0..PEERS {
            assert_eq!(t.insert(addr(i), 32, i), Ok(None));
        }
        assert_eq!(t.len(), PEERS as usize);
        assert!(t.v4.nodes.len() < 2 * PEERS as usize);
        assert!(t.v4.jump.entries.len() <= PEERS as usize);
        for i in (0..PEERS).step_by(97) {
            assert_eq!(t.lookup(addr(i)), Some(i));
        }
        for i in 0..4 {
            assert_eq!(t.remove_by_value(i), 1);
        }
        for i in 4..PEERS {
            assert_eq!(t.remove(addr(i), 32), Some(i));
        }
        assert!(t.is_empty());
        assert!(t.v4.nodes.len() <= COMPACT_MIN_FREE);
        t.check();
    }

    #[test]
    fn compaction_preserves_contents() {
        let mut t = AllowedIps::new();
        for i in 0..20_000u32 {
            t.insert(IpAddr::V6(Ipv6Addr::from(u128::from(i) << 40)), 88, i)
                .expect("valid");
        }
        for i in (0..20_000u32).filter(|i| i % 10 != 0) {
            assert_eq!(
                t.remove(IpAddr::V6(Ipv6Addr::from(u128::from(i) << 40)), 88),
                Some(i)
            );
        }
        t.check();
        assert!(
            t.v6.nodes.len() < 4_000 + COMPACT_MIN_FREE,
            "{}",
            t.v6.nodes.len()
        );
        for i in 0..20_000u32 {
            let want = (i % 10 == 0).then_some(i);
            let addr = (u128::from(i) << 40) | 0xff_ffff;
            assert_eq!(t.lookup_v6(addr.to_be_bytes()), want);
        }
    }

    #[test]
    fn clear_empties_and_iter_is_sorted() {
        let mut t = AllowedIps::new();
        for (a, c) in [
            (v6([1, 0, 0, 0]), 32),
            (v4(10, 0, 0, 0), 8),
            (v4(9, 0, 0, 0), 8),
        ] {
            t.insert(a, c, ()).expect("valid");
        }
        t.insert(v4(10, 0, 0, 0), 7, ()).expect("valid");
        let got: Vec<_> = t.iter().map(|(a, c, ())| (a, c)).collect();
        let mut want = got.clone();
        want.sort();
        assert_eq!(got, want);
        assert_eq!(got.len(), 4);
        t.clear();
        assert!(t.is_empty());
        assert_eq!(t.iter().count(), 0);
        assert_eq!(t.lookup_v4([10, 0, 0, 0]), None);
    }

    /// The naive reference: a list of masked prefixes and a linear longest-prefix scan, with
    /// masking done bit by bit on the octets (independently of the trie's integer shifts).
    #[derive(Default)]
    struct Model {
        entries: Vec<(IpAddr, u8, u32)>,
    }

    fn naive_mask(addr: IpAddr, cidr: u8) -> IpAddr {
        fn clear<const N: usize>(mut o: [u8; N], cidr: u8) -> [u8; N] {
            for bit in usize::from(cidr)..N * 8 {
                o[bit / 8] &= !(0x80 >> (bit % 8));
            }
            o
        }
        match addr {
            IpAddr::V4(a) => IpAddr::V4(clear(a.octets(), cidr).into()),
            IpAddr::V6(a) => IpAddr::V6(clear(a.octets(), cidr).into()),
        }
    }

    impl Model {
        fn max_cidr(addr: IpAddr) -> u8 {
            if addr.is_ipv4() {
                32
            } else {
                128
            }
        }

        fn insert(&mut self, addr: IpAddr, cidr: u8, v: u32) -> Result<Option<u32>, InvalidPrefix> {
            if cidr > Self::max_cidr(addr) {
                return Err(InvalidPrefix);
            }
            let key = naive_mask(addr, cidr);
            for e in &mut self.entries {
                if e.0 == key && e.1 == cidr {
                    return Ok(Some(core::mem::replace(&mut e.2, v)));
                }
            }
            self.entries.push((key, cidr, v));
            Ok(None)
        }

        fn remove(&mut self, addr: IpAddr, cidr: u8) -> Option<u32> {
            let key = naive_mask(addr, cidr);
            let pos = self
                .entries
                .iter()
                .position(|e| e.0 == key && e.1 == cidr)?;
            Some(self.entries.swap_remove(pos).2)
        }

        fn remove_by_value(&mut self, v: u32) -> usize {
            let before = self.entries.len();
            self.entries.retain(|e| e.2 != v);
            before - self.entries.len()
        }

        fn lookup(&self, addr: IpAddr) -> Option<u32> {
            self.entries
                .iter()
                .filter(|e| e.0.is_ipv4() == addr.is_ipv4() && naive_mask(addr, e.1) == e.0)
                .max_by_key(|e| e.1)
                .map(|e| e.2)
        }

        fn sorted(&self) -> Vec<(IpAddr, u8, u32)> {
            let mut all = self.entries.clone();
            all.sort();
            all
        }
    }

    /// An address near one of a few bases, so that generated prefixes overlap and collide.
    fn near_addr(rng: &mut ChaCha8Rng) -> IpAddr {
        const V4: [u32; 5] = [0, 0x0a00_0000, 0x0a00_0180, 0xc0a8_0100, u32::MAX];
        const V6: [u128; 5] = [
            0,
            0xfd00 << 112,
            0xffff_0a00_0000,
            0x2001_0db8 << 96,
            u128::MAX,
        ];
        let flips = rng.gen_range(0..4);
        if rng.gen_bool(0.5) {
            let mut a = V4[rng.gen_range(0..V4.len())];
            for _ in 0..flips {
                a ^= 1 << rng.gen_range(0..32);
            }
            IpAddr::V4(a.into())
        } else {
            let mut a = V6[rng.gen_range(0..V6.len())];
            for _ in 0..flips {
                a ^= 1 << rng.gen_range(0..128);
            }
            IpAddr::V6(a.into())
        }
    }

    fn near_cidr(rng: &mut ChaCha8Rng, addr: IpAddr) -> u8 {
        const COMMON: [u8; 7] = [1, 8, 16, 24, 25, 31, 32];
        let max = Model::max_cidr(addr);
        match rng.gen_range(0..20) {
            0 => rng.gen_range(max + 1..=u8::MAX), // invalid
            1..=9 => COMMON[rng.gen_range(0..COMMON.len())] * (max / 32),
            10..=12 => max,
            _ => rng.gen_range(0..=max),
        }
    }

    /// A random prefix for the differential tests, and a random address to look up.
    struct Workload {
        prefix: fn(&mut ChaCha8Rng) -> (IpAddr, u8),
        probe: fn(&mut ChaCha8Rng) -> IpAddr,
        /// Percentages of steps that insert and remove; 1% remove by value.
        insert: u32,
        remove: u32,
        values: u32,
    }

    /// Runs `steps` random operations on the table and the naive model, checking every result,
    /// `len()` after every step, and `iter()` and the internal invariants every 500 steps.
    fn differential(seed: u64, steps: usize, w: &Workload) -> AllowedIps<u32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut t = AllowedIps::new();
        let mut m = Model::default();
        for step in 0..steps {
            let (addr, cidr) = (w.prefix)(&mut rng);
            let dice = rng.gen_range(0..100);
            if dice < w.insert {
                let v = rng.gen_range(0..w.values);
                assert_eq!(t.insert(addr, cidr, v), m.insert(addr, cidr, v), "{step}");
            } else if dice < w.insert + w.remove {
                let (a, c) = match m.entries.get(rng.gen_range(0..m.entries.len().max(1))) {
                    Some(e) if rng.gen_bool(0.8) => (e.0, e.1),
                    _ => (addr, cidr),
                };
                assert_eq!(t.remove(a, c), m.remove(a, c), "{step}: remove {a}/{c}");
            } else if dice == w.insert + w.remove {
                let v = rng.gen_range(0..w.values);
                assert_eq!(t.remove_by_value(v), m.remove_by_value(v), "{step}");
            }
            for _ in 0..4 {
                let probe = (w.probe)(&mut rng);
                assert_eq!(t.lookup(probe), m.lookup(probe), "{step}: lookup {probe}");
            }
            assert_eq!(t.len(), m.entries.len(), "{step}");
            if step % 500 == 0 {
                t.check();
                assert_eq!(t.iter().collect::<Vec<_>>(), m.sorted(), "{step}");
            }
        }
        t.check();
        assert_eq!(t.iter().collect::<Vec<_>>(), m.sorted());
        for v in 0..w.values {
            let want: Vec<_> = m
                .sorted()
                .into_iter()
                .filter(|e| e.2 == v)
                .map(|e| (e.0, e.1))
                .collect();
            assert_eq!(t.iter_value(v).collect::<Vec<_>>(), want);
        }
        t
    }

    #[test]
    fn differential_against_naive_list() {
        let workload = Workload {
            prefix: |rng| {
                let addr = near_addr(rng);
                (addr, near_cidr(rng, addr))
            },
            probe: near_addr,
            insert: 45,
            remove: 20,
            values: 8,
        };
        differential(0x5eed_a11d, 20_000, &workload);
    }

    #[test]
    fn jump_anchor_follows_the_entries() {
        let mut t = AllowedIps::new();
        let host = |net: u32, i: u32| IpAddr::V4((net | i).into());
        for i in 0..4096 {
            t.insert(host(0x0a00_0000, i), 32, i).expect("valid");
        }
        assert_eq!(t.v4.jump.anchor_cidr, 20);
        assert!(t.v4.jump.bits >= 11);
        for i in 0..2048 {
            t.remove(host(0x0a00_0000, i), 32);
            t.insert(host(0xc0a8_0000, i), 32, i).expect("valid");
        }
        t.check();
        assert_eq!(t.v4.jump.anchor_cidr, 0);
        for i in 0..4096 {
            assert_eq!(t.lookup(host(0x0a00_0000, i)), (i >= 2048).then_some(i));
            assert_eq!(t.lookup(host(0xc0a8_0000, i)), (i < 2048).then_some(i));
        }
    }

    /// A VPN hub's table: thousands of host routes inside one network, with a few shorter
    /// prefixes and default routes, so the jump table anchors below the root.
    #[test]
    fn differential_clustered_peers() {
        fn clustered(rng: &mut ChaCha8Rng) -> IpAddr {
            let host = rng.gen_range(0..4096u32);
            match rng.gen_range(0..10) {
                0..=4 => IpAddr::V4((0x0a00_0000 | host).into()),
                5..=8 => IpAddr::V6(((0xfd00_u128 << 112) | u128::from(host)).into()),
                _ => near_addr(rng),
            }
        }
        let workload = Workload {
            prefix: |rng| {
                let addr = clustered(rng);
                let max = Model::max_cidr(addr);
                let cidr = if rng.gen_bool(0.9) {
                    max
                } else {
                    rng.gen_range(0..=max)
                };
                (addr, cidr)
            },
            probe: clustered,
            insert: 60,
            remove: 25,
            values: 64,
        };
        let t = differential(0xc105_7e2ed, 8_000, &workload);
        assert!(t.v4.jump.anchor_cidr >= 8, "{}", t.v4.jump.anchor_cidr);
        assert!(t.v6.jump.anchor_cidr >= 64, "{}", t.v6.jump.anchor_cidr);
    }

    /// An address whose set bits come from a few fixed positions, so prefixes collide often.
    fn sparse_addr() -> impl Strategy<Value = IpAddr> {
        const P4: [u32; 8] = [0, 1, 2, 8, 16, 23, 24, 31];
        const P6: [u32; 8] = [0, 1, 2, 16, 63, 64, 96, 127];
        let spread = |positions: [u32; 8], width: u32, bits: u8| -> u128 {
            (0..8)
                .filter(|i| bits & (1 << i) != 0)
                .map(|i| 1u128 << (width - 1 - positions[i]))
                .fold(0, |acc, b| acc | b)
        };
        prop_oneof![
            any::<u8>().prop_map(move |b| IpAddr::V4((spread(P4, 32, b) as u32).into())),
            any::<u8>().prop_map(move |b| IpAddr::V6(spread(P6, 128, b).into())),
        ]
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(IpAddr, u8, u32),
        Remove(IpAddr, u8),
        RemoveByValue(u32),
        Lookup(IpAddr),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (sparse_addr(), 0u8..=130, 0u32..4).prop_map(|(a, c, v)| Op::Insert(a, c, v)),
            2 => (sparse_addr(), 0u8..=128).prop_map(|(a, c)| Op::Remove(a, c)),
            1 => (0u32..4).prop_map(Op::RemoveByValue),
            3 => sparse_addr().prop_map(Op::Lookup),
        ]
    }

    proptest! {
        #[test]
        fn proptest_matches_naive_list(ops in prop::collection::vec(op(), 1..300)) {
            let mut t = AllowedIps::new();
            let mut m = Model::default();
            for op in ops {
                match op {
                    Op::Insert(a, c, v) => prop_assert_eq!(t.insert(a, c, v), m.insert(a, c, v)),
                    Op::Remove(a, c) => prop_assert_eq!(t.remove(a, c), m.remove(a, c)),
                    Op::RemoveByValue(v) => prop_assert_eq!(t.remove_by_value(v), m.remove_by_value(v)),
                    Op::Lookup(a) => prop_assert_eq!(t.lookup(a), m.lookup(a)),
                }
                prop_assert_eq!(t.len(), m.entries.len());
            }
            t.check();
            prop_assert_eq!(t.iter().collect::<Vec<_>>(), m.sorted());
        }
    }
}
