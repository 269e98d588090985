//! Anti-replay window for the counters of transport data messages.
//!
//! Every transport data message carries a 64-bit `counter` that is also its AEAD nonce
//! (whitepaper §5.4.6). Since UDP reorders packets, the receiver cannot insist on strictly
//! increasing counters; instead it keeps the sliding bitmap of RFC 6479, with the sizes the
//! Linux kernel (`counter_validate` in `drivers/net/wireguard/receive.c`) and wireguard-go
//! (`replay.Filter`) use: [`COUNTER_BITS_TOTAL`] = 8192 bits in 64-bit words, of which one
//! word is redundant (it is cleared as the window advances), leaving [`COUNTER_WINDOW_SIZE`] =
//! 8128 counters of history.
//!
//! A counter `n` is accepted, and marked, iff all of these hold:
//! - `n < REJECT_AFTER_MESSAGES`;
//! - `n` is not more than [`COUNTER_WINDOW_SIZE`] behind the greatest counter accepted so far,
//!   i.e. it is rejected iff `n + COUNTER_WINDOW_SIZE < greatest` (the kernel's test, written
//!   there with both sides shifted by one; wireguard-go writes it `last - n > windowSize`), so
//!   `greatest - 8128` is still accepted and `greatest - 8129` is not;
//! - `n` has not been accepted before.
//!
//! Feed the window only counters of messages whose AEAD tag has been verified: it records
//! what it accepts, so unauthenticated counters would let anyone slide it forward.

use core::fmt;

/// Bits in the replay bitmap (the kernel's `COUNTER_BITS_TOTAL`).
pub const COUNTER_BITS_TOTAL: u64 = 8192;

/// Bits of the bitmap that are not part of the window: one 64-bit word, which is the one being
/// recycled as the window slides (the kernel's `COUNTER_REDUNDANT_BITS` on 64-bit machines).
pub const COUNTER_REDUNDANT_BITS: u64 = 64;

/// How far behind the greatest accepted counter a counter may be and still be accepted:
/// 8192 − 64 = 8128 (the kernel's `COUNTER_WINDOW_SIZE`, wireguard-go's `windowSize`).
pub const COUNTER_WINDOW_SIZE: u64 = COUNTER_BITS_TOTAL - COUNTER_REDUNDANT_BITS;

pub use crate::messages::REJECT_AFTER_MESSAGES;
// The Linux kernel uses a slightly larger limit, `U64_MAX - COUNTER_WINDOW_SIZE - 1`
// = 2^64 − 8130; the two differ only for counters no real session reaches, and the
// whitepaper's value (2^64 − 2^13 − 1, used here) is the more conservative one.

/// Number of 64-bit words in the bitmap (128).
const WORDS: u64 = COUNTER_BITS_TOTAL / COUNTER_REDUNDANT_BITS;

/// The receive-side replay window of one session key (RFC 6479).
///
/// Each call costs O(1): advancing the window clears at most the whole bitmap (128 words).
#[derive(Clone)]
pub(crate) struct ReplayWindow {
    /// One more than the greatest counter accepted so far, 0 if none has been (the kernel's
    /// `counter`). Counter `n` lives at bit position `n + 1`, so this is also the position of
    /// the newest bit.
    next: u64,
    /// The bitmap, a ring of words indexed by `position / 64 % WORDS`.
    bitmap: [u64; WORDS as usize],
}

impl ReplayWindow {
    /// An empty window: every counter below [`REJECT_AFTER_MESSAGES`] is acceptable.
    pub const fn new() -> Self {
        ReplayWindow {
            next: 0,
            bitmap: [0; WORDS as usize],
        }
    }

    /// Checks `counter` and, if it is fresh, marks it as seen and slides the window forward
    /// when it is the new greatest. Returns `true` iff the counter is fresh (the message must
    /// then be accepted) and `false` for a replay, a counter too old for the window, or one at
    /// or beyond [`REJECT_AFTER_MESSAGES`].
    ///
    /// Call it only after the message has been authenticated.
    #[must_use]
    pub fn check_and_update(&mut self, counter: u64) -> bool {
        let Some(position) = self.position_if_in_window(counter) else {
            return false;
        };
        let word = position / COUNTER_REDUNDANT_BITS;
        if position > self.next {
            let current = self.next / COUNTER_REDUNDANT_BITS;
            // Clear the words between the old newest word and the new one; past WORDS of
            // them the whole ring has been cleared once, so stop there.
            let to_clear = (word - current).min(WORDS);
            for i in 1..=to_clear {
                self.bitmap[ring_index(current + i)] = 0;
            }
            self.next = position;
        }
        let slot = &mut self.bitmap[ring_index(word)];
        let mask = 1u64 << (position % COUNTER_REDUNDANT_BITS);
        let fresh = *slot & mask == 0;
        *slot |= mask;
        fresh
    }

    /// The greatest counter accepted so far, `None` if none has been.
    pub fn greatest(&self) -> Option<u64> {
        self.next.checked_sub(1)
    }

    /// The bit position of `counter` (`counter + 1`), or `None` if it is at or beyond
    /// [`REJECT_AFTER_MESSAGES`] or too far behind the window.
    fn position_if_in_window(&self, counter: u64) -> Option<u64> {
        if counter >= REJECT_AFTER_MESSAGES {
            return None;
        }
        // No overflow: counter + 1 <= REJECT_AFTER_MESSAGES, and REJECT_AFTER_MESSAGES +
        // COUNTER_WINDOW_SIZE = 2^64 - 65 still fits in a u64.
        let position = counter + 1;
        if position + COUNTER_WINDOW_SIZE < self.next {
            return None;
        }
        Some(position)
    }
}

/// The index in the ring of bitmap words of absolute word number `word`.
fn ring_index(word: u64) -> usize {
    // The remainder is below WORDS = 128, so the cast is lossless.
    (word % WORDS) as usize
}

impl Default for ReplayWindow {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ReplayWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReplayWindow")
            .field("greatest", &self.greatest())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeSet;
    use alloc::vec::Vec;
    use proptest::prelude::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const W: u64 = COUNTER_WINDOW_SIZE;
    const R: u64 = REJECT_AFTER_MESSAGES;
    /// The kernel selftest's `T_LIM`.
    const T_LIM: u64 = W + 1;

    /// Runs `cases` (counter, expected) against `window`, naming the failing case.
    fn run(window: &mut ReplayWindow, cases: &[(u64, bool)]) {
        for (i, &(counter, expected)) in cases.iter().enumerate() {
            assert_eq!(
                window.check_and_update(counter),
                expected,
                "case {} counter {counter}",
                i + 1
            );
        }
    }

    #[test]
    fn constants() {
        assert_eq!(COUNTER_WINDOW_SIZE, 8128);
        assert_eq!(WORDS, 128);
        assert_eq!(
            u128::from(REJECT_AFTER_MESSAGES),
            (1u128 << 64) - (1 << 13) - 1
        );
    }

    /// The 34 numbered cases of the kernel's counter selftest (`selftest/counter.c`), re-typed.
    #[test]
    fn kernel_selftest_sequence() {
        let mut w = ReplayWindow::new();
        run(
            &mut w,
            &[
                (0, true),
                (1, true),
                (1, false),
                (9, true),
                (8, true),
                (7, true),
                (7, false),
                (T_LIM, true),
                (T_LIM - 1, true),
                (T_LIM - 1, false),
                (T_LIM - 2, true),
                (2, true),
                (2, false),
                (T_LIM + 16, true),
                (3, false),
                (T_LIM + 16, false),
                (T_LIM * 4, true),
                (T_LIM * 4 - (T_LIM - 1), true),
                (10, false),
                (T_LIM * 4 - T_LIM, false),
                (T_LIM * 4 - (T_LIM + 1), false),
                (T_LIM * 4 - (T_LIM - 2), true),
                (T_LIM * 4 + 1 - T_LIM, false),
                (0, false),
                (R, false),
                (R - 1, true),
                (R, false),
                (R - 1, false),
                (R - 2, true),
                (R + 1, false),
                (R + 2, false),
                (R - 2, false),
                (R - 3, true),
                (0, false),
            ],
        );
        assert_eq!(w.greatest(), Some(R - 1));
    }

    /// Kernel bulk case 1: 1..=W ascending, then 0 is exactly W behind and accepted once.
    #[test]
    fn kernel_bulk_ascending_from_one() {
        let mut w = ReplayWindow::new();
        for i in 1..=W {
            assert!(w.check_and_update(i), "{i}");
        }
        run(&mut w, &[(0, true), (0, false)]);
    }

    /// Kernel bulk case 2: 2..=W+1 ascending, then 1 (W behind) is accepted, 0 (W+1) is not.
    #[test]
    fn kernel_bulk_ascending_from_two() {
        let mut w = ReplayWindow::new();
        for i in 2..=W + 1 {
            assert!(w.check_and_update(i), "{i}");
        }
        run(&mut w, &[(1, true), (0, false)]);
    }

    /// Kernel bulk case 3: W down to 0, all accepted.
    #[test]
    fn kernel_bulk_descending_to_zero() {
        let mut w = ReplayWindow::new();
        for i in (0..=W).rev() {
            assert!(w.check_and_update(i), "{i}");
        }
    }

    /// Kernel bulk case 4: W+1 down to 1, all accepted; 0 is then W+1 behind.
    #[test]
    fn kernel_bulk_descending_to_one() {
        let mut w = ReplayWindow::new();
        for i in (1..=W + 1).rev() {
            assert!(w.check_and_update(i), "{i}");
        }
        run(&mut w, &[(0, false)]);
    }

    /// Kernel bulk case 5: W down to 1, then W+1 makes 0 fall out of the window.
    #[test]
    fn kernel_bulk_descending_then_advance() {
        let mut w = ReplayWindow::new();
        for i in (1..=W).rev() {
            assert!(w.check_and_update(i), "{i}");
        }
        run(&mut w, &[(W + 1, true), (0, false)]);
    }

    /// Kernel bulk case 6: W down to 1, then 0 (still in the window), then W+1.
    #[test]
    fn kernel_bulk_descending_zero_then_advance() {
        let mut w = ReplayWindow::new();
        for i in (1..=W).rev() {
            assert!(w.check_and_update(i), "{i}");
        }
        run(&mut w, &[(0, true), (W + 1, true)]);
    }

    #[test]
    fn greatest_tracks_accepted_counters_only() {
        let mut w = ReplayWindow::default();
        assert_eq!(w.greatest(), None);
        assert!(w.check_and_update(0));
        assert_eq!(w.greatest(), Some(0));
        assert!(w.check_and_update(5));
        assert!(w.check_and_update(3));
        assert_eq!(w.greatest(), Some(5));
        assert!(!w.check_and_update(R));
        assert!(!w.check_and_update(u64::MAX));
        assert_eq!(w.greatest(), Some(5));
    }

    #[test]
    fn first_counter_may_be_anything_below_the_limit() {
        for first in [0, 1, 63, 64, 8191, 8192, 1 << 40, R - 1] {
            let mut w = ReplayWindow::new();
            assert!(w.check_and_update(first), "{first}");
            assert!(!w.check_and_update(first), "{first}");
            assert_eq!(w.greatest(), Some(first));
        }
        assert!(!ReplayWindow::new().check_and_update(R));
    }

    #[test]
    fn window_edge_is_inclusive() {
        let top = 100_000;
        let mut w = ReplayWindow::new();
        assert!(w.check_and_update(top));
        run(
            &mut w,
            &[
                (top - W - 1, false),
                (top - W, true),
                (top - W, false),
                (top - W + 1, true),
                (top - 1, true),
            ],
        );
    }

    /// Jumping further than the bitmap forgets all old marks, including those whose bit
    /// positions alias the new counters modulo 8192.
    #[test]
    fn jump_past_whole_window_clears_old_bits() {
        let mut w = ReplayWindow::new();
        for i in 0..COUNTER_BITS_TOTAL {
            assert!(w.check_and_update(i));
        }
        let top = 10 * COUNTER_BITS_TOTAL + 5;
        assert!(w.check_and_update(top));
        for i in top - W..top {
            assert!(w.check_and_update(i), "{i}");
        }
        assert!(!w.check_and_update(top - W - 1));
        for i in top - W..=top {
            assert!(!w.check_and_update(i), "{i}");
        }
    }

    /// Advancing by exactly the bitmap size (same ring slot) must not report a replay.
    #[test]
    fn advance_by_bitmap_size_is_fresh() {
        let mut w = ReplayWindow::new();
        let mut c = 7;
        for _ in 0..4 {
            assert!(w.check_and_update(c), "{c}");
            assert!(!w.check_and_update(c), "{c}");
            c += COUNTER_BITS_TOTAL;
        }
        // Landing in the ring word that held counter 0 recycles it; 0 is out of the window.
        let mut w = ReplayWindow::new();
        assert!(w.check_and_update(0));
        assert!(w.check_and_update(W + 63));
        assert!(!w.check_and_update(0));
    }

    #[test]
    fn debug_shows_greatest_only() {
        let mut w = ReplayWindow::new();
        assert!(w.check_and_update(3));
        assert_eq!(
            alloc::format!("{w:?}"),
            "ReplayWindow { greatest: Some(3), .. }"
        );
    }

    /// The obvious, unbounded model: remember every accepted counter.
    #[derive(Default)]
    struct Model {
        seen: BTreeSet<u64>,
        greatest: Option<u64>,
    }

    impl Model {
        fn would_accept(&self, c: u64) -> bool {
            c < R
                && self.greatest.is_none_or(|g| g.saturating_sub(c) <= W)
                && !self.seen.contains(&c)
        }

        fn check_and_update(&mut self, c: u64) -> bool {
            if !self.would_accept(c) {
                return false;
            }
            self.seen.insert(c);
            self.greatest = Some(self.greatest.map_or(c, |g| g.max(c)));
            true
        }
    }

    fn check_against_model(counters: impl IntoIterator<Item = u64>) {
        let mut w = ReplayWindow::new();
        let mut model = Model::default();
        for (i, c) in counters.into_iter().enumerate() {
            assert_eq!(
                w.check_and_update(c),
                model.check_and_update(c),
                "step {i} {c}"
            );
            assert_eq!(w.greatest(), model.greatest, "step {i}");
        }
    }

    /// Counters drawn around the greatest one so far: mostly reordering within and just outside
    /// the window, some duplicates, forward jumps of every size, and the region near the limit.
    fn random_counters(seed: u64, steps: usize) -> Vec<u64> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out = Vec::with_capacity(steps);
        let mut top: u64 = if seed % 2 == 0 { 0 } else { R - 300_000 };
        for _ in 0..steps {
            let c = match rng.gen_range(0..100) {
                0..=49 => top.saturating_sub(rng.gen_range(0..W + 200)),
                50..=69 => top.saturating_add(rng.gen_range(0..130)),
                70..=79 => out.last().copied().unwrap_or(0),
                80..=89 => top.saturating_add(rng.gen_range(0..3 * COUNTER_BITS_TOTAL)),
                90..=94 => top.saturating_sub(rng.gen_range(W - 70..W + 70)),
                95..=97 => R.saturating_sub(rng.gen_range(0..4)) + rng.gen_range(0..2),
                _ => rng.gen(),
            };
            if c < R {
                top = top.max(c);
            }
            out.push(c);
        }
        out
    }

    #[test]
    fn differential_against_model_seeded() {
        for seed in 0..8 {
            check_against_model(random_counters(seed, 40_000));
        }
    }

    proptest! {
        /// Walks with small signed steps, which keep revisiting the window's edges.
        #[test]
        fn differential_against_model_proptest(
            start in prop_oneof![Just(0u64), Just(R - 20_000), any::<u64>()],
            steps in proptest::collection::vec(-9000i64..9000, 1..400),
        ) {
            let mut c = start;
            let counters = steps.into_iter().map(|d| {
                c = c.saturating_add_signed(d);
                c
            });
            check_against_model(counters);
        }
    }
}
