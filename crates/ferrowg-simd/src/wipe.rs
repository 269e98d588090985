//! Wiping secrets held by types that do not wipe themselves.
//!
//! Some key types keep their key material inline and forget it without clearing it when
//! dropped: ring's `LessSafeKey` (ring 0.17: the expanded key words inline, no heap
//! pointers, no `Drop`). [`WipeOnDrop`] holds such a value, drops it in place and then
//! overwrites every byte it occupied with zeros, so a freed session key does not stay in memory
//! (the kernel frees its keypairs with `kfree_sensitive` for the same reason).
//!
//! What it cannot do: clear heap memory the wrapped value owns through pointers (wrap only
//! types whose secrets are inline), nor copies left behind by moves before it was wrapped. For
//! plain bytes, `zeroize` is the tool; this is for foreign types it cannot reach.
//!
//! Those copies on the stack (a derived key moved from a KDF's result into a key schedule, the
//! hash state that produced it) stay in the frames of functions that have returned until
//! something deeper overwrites them. [`scrub_stack`] overwrites [`SCRUB_STACK_BYTES`] below
//! its caller: a thread calls it after work that handled secrets (a handshake), at a depth no
//! greater than where that work was called from.

use core::mem::MaybeUninit;
use core::ops::Deref;
use core::sync::atomic::{compiler_fence, Ordering};

/// A `T` whose bytes are overwritten with zeros after it is dropped.
///
/// Meant for types whose secrets live inside the value itself (no heap pointers to secrets).
/// Moving a `WipeOnDrop` moves the value; the place it was moved from is not wiped, so build it
/// where it will live (e.g. inside a `Box`) when that matters.
pub struct WipeOnDrop<T> {
    /// Always initialised, except during `drop`.
    value: MaybeUninit<T>,
}

impl<T> WipeOnDrop<T> {
    /// Takes `value`, to be wiped when dropped.
    pub fn new(value: T) -> Self {
        WipeOnDrop {
            value: MaybeUninit::new(value),
        }
    }
}

impl<T> Deref for WipeOnDrop<T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: `value` is initialised in `new` and only de-initialised in `drop`, after
        // which no reference to it can exist.
        unsafe { self.value.assume_init_ref() }
    }
}

impl<T> Drop for WipeOnDrop<T> {
    fn drop(&mut self) {
        // SAFETY: `value` is initialised (see `deref`) and dropped exactly once, here; it is
        // never read again.
        unsafe { self.value.assume_init_drop() };
        zero(bytes_of(&mut self.value));
    }
}

impl<T> core::fmt::Debug for WipeOnDrop<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("WipeOnDrop(..)")
    }
}

/// How much stack [`scrub_stack`] clears: more than a handshake's call chain (Noise, BLAKE2s,
/// X25519, key setup) reaches below the daemon's receive loop (the key copies that
/// `e2e_memscan` finds without the scrub lie within 11 KiB of the top of the thread's stack).
pub const SCRUB_STACK_BYTES: usize = 32 * 1024;

/// Overwrites the [`SCRUB_STACK_BYTES`] of stack below the caller's frame with zeros, clearing
/// what the functions it called before left there (one 32 KiB memset).
#[inline(never)]
pub fn scrub_stack() {
    let mut area = [0u8; SCRUB_STACK_BYTES];
    // `black_box` makes the compiler treat the array as read, so its zeroing is not removed
    // as a dead store (what `aead16` does for its one-time keys); `inline(never)` puts the
    // array in a frame of its own, below the caller's.
    core::hint::black_box(&mut area);
}

/// The bytes of `v`, whatever they hold.
fn bytes_of<T>(v: &mut MaybeUninit<T>) -> &mut [MaybeUninit<u8>] {
    let len = core::mem::size_of::<T>();
    let ptr = v.as_mut_ptr().cast::<MaybeUninit<u8>>();
    // SAFETY: `ptr` points to the `size_of::<T>()` bytes of `v`, borrowed mutably for the
    // lifetime of the slice; `MaybeUninit<u8>` has alignment 1 and allows any content (also
    // padding and uninitialised bytes).
    unsafe { core::slice::from_raw_parts_mut(ptr, len) }
}

/// Overwrites `bytes` with zeros in a way the compiler may not remove as a dead store.
fn zero(bytes: &mut [MaybeUninit<u8>]) {
    for b in bytes.iter_mut() {
        // SAFETY: `b` is a valid, aligned, exclusive reference to one byte.
        unsafe { core::ptr::write_volatile(b, MaybeUninit::new(0)) };
    }
    compiler_fence(Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;

    /// Counts its drops.
    struct Counted(Rc<Cell<u32>>, [u8; 40]);

    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    #[test]
    fn derefs_and_drops_the_value_once() {
        let drops = Rc::new(Cell::new(0));
        let w = WipeOnDrop::new(Counted(drops.clone(), [7; 40]));
        assert_eq!(w.1, [7; 40]);
        drop(w);
        assert_eq!(drops.get(), 1);
    }

    #[test]
    fn the_bytes_are_zero_after_drop() {
        // Drop in place inside a buffer we still own, then look at the bytes.
        let mut slot = MaybeUninit::new(WipeOnDrop::new([0xa5u8; 64]));
        // SAFETY: `slot` was initialised just above and is not used as a value again.
        unsafe { slot.assume_init_drop() };
        let bytes = bytes_of(&mut slot);
        assert_eq!(bytes.len(), 64);
        // SAFETY: `zero` wrote every byte of the wrapped value, which fills the whole slot.
        assert!(bytes.iter().all(|b| unsafe { b.assume_init() } == 0));
    }

    /// Runs within a test thread's stack. (That it clears what returned calls left is checked
    /// end to end, in the daemon, by `crates/ferrowg/tests/e2e_memscan.rs`: reading dead stack
    /// frames from Rust would not be sound.)
    #[test]
    fn scrub_stack_runs() {
        scrub_stack();
        scrub_stack();
    }

    #[test]
    fn zero_clears_every_byte() {
        let mut b = [MaybeUninit::new(0xffu8); 33];
        zero(&mut b);
        // SAFETY: every element was initialised (and then zeroed).
        assert!(b.iter().all(|x| unsafe { x.assume_init() } == 0));
    }
}
