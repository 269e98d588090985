//! The jump table over the top of a trie, and how insertions and removals keep it current
//! (see `Jump` in `mod.rs`).

use super::*;

impl<K: Key> Jump<K> {
    pub(super) const OFF: Self = Jump {
        anchor: K::ZERO,
        anchor_cidr: 0,
        bits: 0,
        entries: Vec::new(),
        sized_for: 0,
        outside: 0,
    };

    /// The prefix length a bucket stands for.
    pub(super) fn depth(&self) -> u8 {
        self.anchor_cidr.saturating_add(self.bits)
    }

    /// The entry for `key`'s bucket, if `key` lies inside the anchor and the table is on.
    #[inline(always)]
    pub(super) fn entry(&self, key: K) -> Option<&JumpEntry> {
        if key.masked(self.anchor_cidr) != self.anchor {
            return None;
        }
        self.entries.get(key.field(self.anchor_cidr, self.bits))
    }

    /// The buckets of the block `block/level` (`anchor_cidr <= level <= depth`), as a range.
    pub(super) fn range(&self, block: K, level: u8) -> core::ops::Range<usize> {
        let start = block.field(self.anchor_cidr, self.bits);
        let len = 1usize
            .checked_shl(u32::from(self.depth().saturating_sub(level)))
            .unwrap_or(0);
        start..start.saturating_add(len)
    }

    /// Sets every bucket in `range` (clipped to the table) to a dead end with `best`.
    pub(super) fn fill(&mut self, range: core::ops::Range<usize>, best: u32) {
        let end = range.end.min(self.entries.len());
        if let Some(entries) = self.entries.get_mut(range.start.min(end)..end) {
            entries.fill(JumpEntry { node: NIL, best });
        }
    }

    /// In `range`, replaces `best == old` by `new`: where the removed entry `old` was the
    /// deepest, nothing between it and the bucket had a value, so the next one up takes over.
    pub(super) fn replace_best(&mut self, range: core::ops::Range<usize>, old: u32, new: u32) {
        for entry in self.entries.get_mut(range).into_iter().flatten() {
            if entry.best == old {
                entry.best = new;
            }
        }
    }

    /// The block of buckets inside `key/cidr`, as a prefix, or `None` if there are none.
    pub(super) fn affected(&self, key: K, cidr: u8) -> Option<(K, u8)> {
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
    pub(super) fn update_jump(&mut self, key: K, cidr: u8, change: Change) {
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
    pub(super) fn raise_best(&mut self, range: core::ops::Range<usize>, idx: u32, cidr: u8) {
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
    pub(super) fn walk_to(&self, key: K, level: u8) -> (u32, u32) {
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
    pub(super) fn rebuild_jump(&mut self) {
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
    pub(super) fn choose_anchor(&self) -> (K, u8, usize) {
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
    pub(super) fn repaint(&mut self, block: K, level: u8) {
        let (start, best) = self.walk_to(block, level);
        self.paint(start, best, block, level);
    }

    /// Fills the buckets of `block/level`, whose walks all reach node `start` (`NIL`, or a node
    /// at least `level` bits long) having passed `best`. Each bucket is written once, by the
    /// deepest node above bucket depth that covers it. The stack holds at most one pending
    /// sibling per level, so it stays under `JUMP_MAX_BITS + 2` entries.
    pub(super) fn paint(&mut self, start: u32, best: u32, block: K, level: u8) {
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
