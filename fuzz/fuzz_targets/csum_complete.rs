//! Completion of a partial transport checksum ([`complete_checksum`], for TUN reads with
//! `NEEDS_CSUM` and no GSO) with arbitrary header offsets, and the vectorised sum
//! ([`checksum_add`]) against a 16-bit oracle.
//!
//! Checked: no panic; offsets outside the packet are refused; otherwise only the two checksum
//! bytes change and the sum from `csum_start` on, over the partial sum that was in the field,
//! comes out right (for an even `csum_offset`); the fast sum agrees with the oracle at any length and alignment.
#![no_main]

use ferrowg_daemon::offload::{checksum_add, checksum_fold, complete_checksum};
use ferrowg_fuzz::packets::sum16;
use ferrowg_sys::VirtioNetHdr;
use libfuzzer_sys::arbitrary::{self, Arbitrary};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Input {
    csum_start: u16,
    csum_offset: u16,
    initial: u32,
    packet: Vec<u8>,
}

fuzz_target!(|inp: Input| {
    let mut p = inp.packet.clone();
    // Mostly offsets inside the packet, sometimes anything.
    let (start, offset) = if inp.initial & 1 == 0 && !p.is_empty() {
        let s = usize::from(inp.csum_start) % p.len();
        (
            s as u16,
            (usize::from(inp.csum_offset) % (p.len() - s + 1)) as u16,
        )
    } else {
        (inp.csum_start, inp.csum_offset)
    };
    let hdr = VirtioNetHdr {
        csum_start: start,
        csum_offset: offset,
        ..VirtioNetHdr::default()
    };
    let at = usize::from(start) + usize::from(offset);
    match complete_checksum(&hdr, &mut p) {
        Err(_) => {
            assert!(at + 2 > p.len());
            assert_eq!(p, inp.packet, "a refused packet is left alone");
        }
        Ok(()) => {
            assert!(at + 2 <= p.len());
            let initial = u16::from_be_bytes([inp.packet[at], inp.packet[at + 1]]);
            for (i, (a, b)) in p.iter().zip(&inp.packet).enumerate() {
                assert!(a == b || i == at || i == at + 1, "byte {i} changed");
            }
            assert_ne!(&p[at..at + 2], &[0, 0], "0 is sent as 0xffff");
            // Checked for even offsets (TCP's 16 and UDP's 6): a field at an odd distance from
            // `csum_start` straddles the 16-bit words of the sum, and the kernel's
            // `skb_checksum_help` stores it there just the same.
            if offset % 2 == 0 {
                assert_eq!(sum16(&p[usize::from(start)..], u64::from(initial)), 0xffff);
            }
        }
    }
    // The fast sum at every start alignment within the first 8 bytes.
    for off in 0..inp.packet.len().min(8) {
        let data = &inp.packet[off..];
        let init = u64::from(inp.initial);
        assert_eq!(
            checksum_fold(checksum_add(data, init)),
            sum16(data, init),
            "offset {off}"
        );
    }
});
