//! The path-compressed binary trie of one address family: insert, remove, longest-prefix
//! lookup, compaction and pre-order iteration (see the module documentation in `mod.rs`).

use super::*;

impl<K: Key, T: Copy + PartialEq> Trie<K, T> {
    pub(super) const fn new() -> Self {
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
    pub(super) fn node(&self, idx: u32) -> Option<&Node<K>> {
        self.nodes.get(slot(idx))
    }

    pub(super) fn value(&self, idx: u32) -> Option<T> {
        self.values.get(slot(idx)).copied().flatten()
    }

    pub(super) fn target(&self, link: Link) -> u32 {
        match link {
            Link::Root => self.root,
            Link::Child { parent, bit } => self
                .node(parent)
                .and_then(|n| n.children.get(bit).copied())
                .unwrap_or(NIL),
        }
    }

    pub(super) fn set_target(&mut self, link: Link, target: u32) {
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
    pub(super) fn set_child(&mut self, parent: u32, bit: usize, child: u32) {
        self.set_target(Link::Child { parent, bit }, child);
    }

    /// Whether `n` more nodes fit in the arena.
    pub(super) fn has_room(&self, n: usize) -> bool {
        let unused = slot(NIL).saturating_sub(self.nodes.len());
        self.free_count.saturating_add(unused) >= n
    }

    /// Stores a node, reusing a free slot if there is one. The caller checks `has_room` first;
    /// if the arena is full anyway, returns `NIL` and stores nothing.
    pub(super) fn alloc(&mut self, node: Node<K>, value: Option<T>) -> u32 {
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
    pub(super) fn free(&mut self, idx: u32) {
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
    pub(super) fn lookup(&self, key: K) -> Option<T> {
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
    pub(super) fn insert(&mut self, key: K, cidr: u8, value: T) -> Option<T> {
        let (old, idx) = self.insert_node(key, cidr, value);
        if old.is_none() && idx != NIL {
            self.update_jump(key, cidr, Change::Gained(idx));
        }
        old
    }

    /// The trie part of `insert`: returns the previous value and the index of the node that now
    /// holds the entry (`NIL` if the arena was full).
    pub(super) fn insert_node(&mut self, key: K, cidr: u8, value: T) -> (Option<T>, u32) {
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
    pub(super) fn attach_leaf(&mut self, link: Link, key: K, cidr: u8, value: T) -> u32 {
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
    pub(super) fn split(
        &mut self,
        link: Link,
        idx: u32,
        common: u8,
        key: K,
        cidr: u8,
        value: T,
    ) -> u32 {
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
    pub(super) fn replace_value(&mut self, idx: u32, value: T) -> Option<T> {
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
    pub(super) fn remove(&mut self, key: K, cidr: u8) -> Option<T> {
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
    pub(super) fn prune(&mut self, link: Link, parent_link: Option<Link>) {
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
    pub(super) fn splice_out(&mut self, link: Link) {
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
    pub(super) fn maybe_compact(&mut self) -> bool {
        let compact = self.free_count >= COMPACT_MIN_FREE && self.free_count > self.nodes.len() / 2;
        if compact {
            self.compact();
            self.rebuild_jump();
        }
        compact
    }

    /// Copies the live nodes into fresh, exactly sized vectors in breadth-first order (which
    /// also puts the hot top of the trie in few cache lines).
    pub(super) fn compact(&mut self) {
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
    pub(super) fn preorder(&self) -> Preorder<'_, K, T> {
        let stack = if self.root == NIL {
            Vec::new()
        } else {
            alloc::vec![self.root]
        };
        Preorder { trie: self, stack }
    }

    /// All entries, in ascending order of (address, prefix length).
    pub(super) fn iter(&self) -> impl Iterator<Item = (K, u8, T)> + '_ {
        self.preorder().filter_map(|idx| {
            let node = self.node(idx)?;
            Some((node.key, node.cidr, self.value(idx)?))
        })
    }

    /// The entries mapping to `value`.
    pub(super) fn keys_of(&self, value: T) -> Vec<(K, u8)> {
        self.iter()
            .filter(|&(_, _, v)| v == value)
            .map(|(k, c, _)| (k, c))
            .collect()
    }

    /// Removes every entry mapping to `value`; returns how many there were.
    pub(super) fn remove_by_value(&mut self, value: T) -> usize {
        let doomed = self.keys_of(value);
        for &(key, cidr) in &doomed {
            self.remove(key, cidr);
        }
        doomed.len()
    }
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
