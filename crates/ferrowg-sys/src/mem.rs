//! Page-backed buffers for the data path.
//!
//! The daemon keeps about 8 MiB of packet buffers per I/O thread (64 reads of up to 64 KiB, a
//! send arena, GRO frames), almost none of which an idle or lightly used tunnel ever writes.
//! Allocated from the C heap they cost resident memory at once (the allocator clears or reuses
//! touched pages); mapped here as private anonymous memory they cost a page only when it is
//! first written, and [`PageBuf::release`] gives the pages back after a burst.

use std::alloc::{handle_alloc_error, Layout};
use std::ops::{Deref, DerefMut};
use std::ptr::NonNull;

/// A zero-filled byte buffer in its own anonymous memory mapping.
pub struct PageBuf {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: a PageBuf owns its mapping exclusively, like a Box<[u8]>; &PageBuf only hands out
// shared slices and &mut PageBuf exclusive ones.
unsafe impl Send for PageBuf {}
// SAFETY: as above.
unsafe impl Sync for PageBuf {}

impl PageBuf {
    /// `len` zero bytes. Like `vec![0; len]`, aborts through [`handle_alloc_error`] when the
    /// memory cannot be mapped.
    pub fn zeroed(len: usize) -> Self {
        if len == 0 {
            return PageBuf {
                ptr: NonNull::dangling(),
                len: 0,
            };
        }
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        match NonNull::new(p.cast::<u8>()) {
            Some(ptr) if p != libc::MAP_FAILED => PageBuf { ptr, len },
            _ => handle_alloc_error(
                Layout::from_size_align(len, 4096).unwrap_or(Layout::new::<u8>()),
            ),
        }
    }

    /// `count` buffers of `len` bytes each.
    pub fn many(count: usize, len: usize) -> Vec<PageBuf> {
        (0..count).map(|_| PageBuf::zeroed(len)).collect()
    }

    /// Gives the pages back to the kernel; the buffer then reads as zeros again and costs no
    /// memory until written. Best effort: on failure the contents are simply kept.
    pub fn release(&mut self) {
        if self.len == 0 {
            return;
        }
        // SAFETY: the range is exactly our own mapping; MADV_DONTNEED on a private anonymous
        // mapping only replaces its pages with zero pages, which `&mut self` makes unobservable
        // to anyone else.
        unsafe {
            libc::madvise(self.ptr.as_ptr().cast(), self.len, libc::MADV_DONTNEED);
        }
    }
}

impl Deref for PageBuf {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        // SAFETY: ptr is valid for len readable bytes (our mapping, or dangling with len 0)
        // for as long as self lives.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl DerefMut for PageBuf {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in deref, and &mut self makes the slice exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.len) }
    }
}

impl AsRef<[u8]> for PageBuf {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl AsMut<[u8]> for PageBuf {
    fn as_mut(&mut self) -> &mut [u8] {
        self
    }
}

impl Drop for PageBuf {
    fn drop(&mut self) {
        if self.len != 0 {
            // SAFETY: our own mapping of exactly len bytes, unmapped once; no slice of it
            // outlives self.
            unsafe {
                libc::munmap(self.ptr.as_ptr().cast(), self.len);
            }
        }
    }
}

impl std::fmt::Debug for PageBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PageBuf({} bytes)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rss_kib() -> u64 {
        let s = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    #[test]
    fn zeroed_writable_and_released() {
        let mut b = PageBuf::zeroed(3 * 4096 + 5);
        assert_eq!(b.len(), 3 * 4096 + 5);
        assert!(b.iter().all(|&x| x == 0));
        b[4096 * 3 + 4] = 7;
        b[0] = 1;
        assert_eq!((b[0], b[4096 * 3 + 4]), (1, 7));
        b.release();
        assert!(b.iter().all(|&x| x == 0), "released pages read as zero");
        b[1] = 2;
        assert_eq!(b[1], 2);
        let empty = PageBuf::zeroed(0);
        assert!(empty.is_empty());
    }

    #[test]
    fn untouched_pages_cost_no_memory() {
        // 64 MiB mapped: had the pages been touched, RSS would grow by 64 MiB.
        let before = rss_kib();
        let mut bufs = PageBuf::many(16, 4 << 20);
        let mapped = rss_kib();
        assert!(
            mapped < before + 8 * 1024,
            "mapping cost {} KiB",
            mapped - before
        );
        for b in &mut bufs {
            b.fill(1);
        }
        let written = rss_kib();
        assert!(
            written >= before + 60 * 1024,
            "writing cost {} KiB",
            written - before
        );
        for b in &mut bufs {
            b.release();
        }
        let released = rss_kib();
        assert!(
            released < written - 56 * 1024,
            "release gave back {} KiB",
            written - released
        );
    }
}
