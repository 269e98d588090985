//! Proof that `ferrowg-proto` builds for a target without `std`: a `#![no_std]` static library
//! with its own panic handler and a bump allocator over a static arena, calling into the core
//! so that the linker keeps it. Any `std` in the dependency graph fails this build with
//! "duplicate lang item panic_impl".
#![no_std]

extern crate alloc;

use alloc::boxed::Box;
use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

use ferrowg_proto::crypto::{RustCrypto, SecretKey, StaticKey};
use ferrowg_proto::device::Device;

const ARENA: usize = 1 << 20;

/// A bump allocator: enough to build a device once; never frees.
struct Bump {
    next: AtomicUsize,
}

static mut HEAP: [u8; ARENA] = [0; ARENA];

unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let align = layout.align();
        let mut cur = self.next.load(Ordering::Relaxed);
        loop {
            let start = (cur + align - 1) & !(align - 1);
            let end = start + layout.size();
            if end > ARENA {
                return core::ptr::null_mut();
            }
            match self
                .next
                .compare_exchange(cur, end, Ordering::Relaxed, Ordering::Relaxed)
            {
                // SAFETY: [start, end) lies inside HEAP and is handed out once.
                Ok(_) => return unsafe { (&raw mut HEAP).cast::<u8>().add(start) },
                Err(v) => cur = v,
            }
        }
    }
    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static ALLOC: Bump = Bump {
    next: AtomicUsize::new(0),
};

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}

/// A deterministic RNG for the check (a real device passes its TRNG).
struct Counter(u64);

impl rand_core_shim::RngCore for Counter {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1);
        self.0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = self.next_u64() as u8;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core_shim::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl rand_core_shim::CryptoRng for Counter {}

use ferrowg_proto::rand_core as rand_core_shim;

/// Builds a device and returns the first byte of its public key.
#[no_mangle]
pub extern "C" fn ferrowg_nostd_check() -> u8 {
    let key = SecretKey::from_bytes([7; 32]);
    let public = key.public_key();
    let dev = Device::new(Box::new(key), Box::new(RustCrypto), Box::new(Counter(1)));
    dev.public_key()[0] ^ public[0]
}
