//! ChaCha20-Poly1305 (RFC 8439, empty AAD, WireGuard's 64-bit counter nonce) for up to 16
//! messages under one key at once, with AVX-512 and AVX-512 IFMA.
//!
//! Why it is here: ring's x86-64 code (the stitched AVX2 seal/open) is the daemon's largest cost
//! under load, and no crate seals *many* messages at once. A GSO super-packet is split into ~45
//! datagrams of the same size under the same key, so they can share the vector lanes:
//! - ChaCha20: lane *i* of each 512-bit register holds one 32-bit state word of message *i*; one
//!   pass of the 20 rounds makes block *j* of 16 messages, and a 16×16 transpose turns the lanes
//!   back into 64-byte keystream blocks.
//! - Poly1305: lane *i* of a 512-bit register holds a 44-bit limb of message *i*'s accumulator
//!   (radix 2^44: 44 + 44 + 42 bits); `vpmadd52luq`/`vpmadd52huq` (IFMA) multiply by r for 8
//!   messages in 18 instructions per 16-byte block.
//!
//! It needs `unsafe`: for the call into code compiled for
//! features the CPU was checked for at run time, and for vector loads and stores (each through
//! the fixed-size array helpers below). Everything is constant-time in the key and the data:
//! no branch or address depends on them, only on message lengths. The tests compare every
//! output byte with RustCrypto's `chacha20poly1305` over many lengths, counters and batch sizes.

/// Most messages one call to the vector code takes (more are processed in groups of this size).
pub const LANES: usize = 16;

/// One message of a batch: encrypted or decrypted in place.
#[derive(Debug)]
pub struct Message<'a> {
    /// The nonce counter (WireGuard's: the nonce is 4 zero bytes and this, little-endian).
    pub counter: u64,
    /// Plaintext in, ciphertext out ([`seal`]), or the reverse ([`open`]).
    pub body: &'a mut [u8],
    /// The tag: written by [`seal`], checked by [`open`].
    pub tag: &'a mut [u8; 16],
    /// Set by [`open`]: whether the tag verified. A body whose tag does not verify is left as
    /// it came (still encrypted).
    pub ok: bool,
}

/// Whether this CPU runs the vector code (AVX-512F, BW and IFMA).
pub fn available() -> bool {
    imp::available()
}

/// Encrypts every message in place under `key` and writes its tag. False (and nothing done)
/// if the CPU lacks the features: the caller seals another way.
pub fn seal(key: &[u8; 32], msgs: &mut [Message<'_>]) -> bool {
    imp::seal(key, msgs)
}

/// Checks every message's tag under `key` and decrypts those that verify (setting `ok`).
/// False (and nothing done) if the CPU lacks the features.
pub fn open(key: &[u8; 32], msgs: &mut [Message<'_>]) -> bool {
    imp::open(key, msgs)
}

#[cfg(not(target_arch = "x86_64"))]
mod imp {
    use super::Message;

    pub fn available() -> bool {
        false
    }
    pub fn seal(_: &[u8; 32], _: &mut [Message<'_>]) -> bool {
        false
    }
    pub fn open(_: &[u8; 32], _: &mut [Message<'_>]) -> bool {
        false
    }
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use super::{Message, LANES};
    use core::arch::x86_64::*;

    /// "expand 32-byte k".
    const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];
    /// Messages per Poly1305 group (64-bit lanes of a 512-bit register).
    const PLANES: usize = 8;
    const M44: u64 = (1 << 44) - 1;
    const M42: u64 = (1 << 42) - 1;

    pub fn available() -> bool {
        std::is_x86_feature_detected!("avx512f")
            && std::is_x86_feature_detected!("avx512bw")
            && std::is_x86_feature_detected!("avx512ifma")
    }

    pub fn seal(key: &[u8; 32], msgs: &mut [Message<'_>]) -> bool {
        in_groups::<true>(key, msgs)
    }

    pub fn open(key: &[u8; 32], msgs: &mut [Message<'_>]) -> bool {
        in_groups::<false>(key, msgs)
    }

    /// Seals (`SEAL`) or opens every message, a group of up to [`LANES`] at a time; false (and
    /// nothing done) if the CPU lacks the features.
    #[inline]
    fn in_groups<const SEAL: bool>(key: &[u8; 32], msgs: &mut [Message<'_>]) -> bool {
        if !available() {
            return false;
        }
        for group in msgs.chunks_mut(LANES) {
            // SAFETY: `available()` checked that the CPU has every feature `seal_group` and
            // `open_group` are compiled for (avx512f, avx512bw, avx512ifma); they are otherwise
            // safe.
            unsafe {
                if SEAL {
                    seal_group(key, group)
                } else {
                    open_group(key, group)
                }
            };
        }
        true
    }

    /// One-time keys (the first 32 bytes of block 0 of each message's key stream).
    type PolyKeys = [[u8; 64]; LANES];

    /// Every message of a group.
    const ALL: u16 = u16::MAX;

    #[target_feature(enable = "avx512f,avx512bw,avx512ifma")]
    fn seal_group(key: &[u8; 32], msgs: &mut [Message<'_>]) {
        let mut keys: PolyKeys = [[0; 64]; LANES];
        chacha(key, msgs, ALL, true, true, &mut keys);
        for (g, k) in msgs.chunks_mut(PLANES).zip(keys.chunks(PLANES)) {
            let mut tags = poly1305(g, k);
            for (m, t) in g.iter_mut().zip(tags.iter()) {
                *m.tag = *t;
            }
            wipe(&mut tags, [[0; 16]; PLANES]);
        }
        wipe(&mut keys, [[0; 64]; LANES]);
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512ifma")]
    fn open_group(key: &[u8; 32], msgs: &mut [Message<'_>]) {
        let mut keys: PolyKeys = [[0; 64]; LANES];
        chacha(key, msgs, ALL, true, false, &mut keys);
        let mut verified = 0u16;
        for (gi, (g, k)) in msgs.chunks_mut(PLANES).zip(keys.chunks(PLANES)).enumerate() {
            let mut tags = poly1305(g, k);
            for (i, (m, t)) in g.iter_mut().zip(tags.iter()).enumerate() {
                let diff = m
                    .tag
                    .iter()
                    .zip(t.iter())
                    .fold(0u8, |d, (a, b)| d | (a ^ b));
                m.ok = diff == 0;
                verified |= u16::from(m.ok) << (gi * PLANES + i);
            }
            wipe(&mut tags, [[0; 16]; PLANES]);
        }
        // Decrypt only what verified: a forged body stays ciphertext.
        chacha(key, msgs, verified, false, true, &mut keys);
        wipe(&mut keys, [[0; 64]; LANES]);
    }

    /// ChaCha20 for the messages selected by the bit mask `select`: with `poly_keys`, block 0,
    /// whose key stream goes to `keys` (the one-time Poly1305 keys); with `data`, blocks 1..,
    /// XORed into the bodies (block j into `body[64(j-1)..]`). A seal does both in one pass.
    #[target_feature(enable = "avx512f,avx512bw,avx512ifma")]
    fn chacha(
        key: &[u8; 32],
        msgs: &mut [Message<'_>],
        select: u16,
        poly_keys: bool,
        data: bool,
        keys: &mut PolyKeys,
    ) {
        let mut bodies: [&mut [u8]; LANES] = Default::default();
        let mut counters = [0u64; LANES];
        let mut blocks = 0;
        let n = msgs.len();
        for (i, m) in msgs.iter_mut().enumerate() {
            if select & (1 << i) != 0 {
                blocks = blocks.max(m.body.len().div_ceil(64));
                bodies[i] = &mut *m.body;
            }
            counters[i] = m.counter;
        }
        let first = if poly_keys { 0 } else { 1 };
        let last = if data { blocks + 1 } else { 1 };
        keystream_xor(key, &counters[..n], &mut bodies, first..last, keys);
    }

    #[target_feature(enable = "avx512f,avx512bw,avx512ifma")]
    fn keystream_xor(
        key: &[u8; 32],
        counters: &[u64],
        bodies: &mut [&mut [u8]; LANES],
        blocks: core::ops::Range<usize>,
        keys: &mut PolyKeys,
    ) {
        let mut k = [0u32; 8];
        for (w, c) in k.iter_mut().zip(key.chunks_exact(4)) {
            *w = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        }
        let mut lo = [0u32; LANES];
        let mut hi = [0u32; LANES];
        for (i, &c) in counters.iter().enumerate() {
            lo[i] = c as u32;
            hi[i] = (c >> 32) as u32;
        }
        // The state: words 0-3 the constants, 4-11 the key, 12 the block counter (set per
        // block), 13-15 the nonce (zero, then the message counter's low and high halves).
        let mut init = [_mm512_setzero_si512(); 16];
        for (v, &w) in init.iter_mut().zip(SIGMA.iter().chain(&k)) {
            *v = _mm512_set1_epi32(w as i32);
        }
        init[14] = load512(&lo);
        init[15] = load512(&hi);
        for j in blocks {
            init[12] = _mm512_set1_epi32(j as i32);
            let mut x = init;
            for _ in 0..10 {
                quarter(&mut x, 0, 4, 8, 12);
                quarter(&mut x, 1, 5, 9, 13);
                quarter(&mut x, 2, 6, 10, 14);
                quarter(&mut x, 3, 7, 11, 15);
                quarter(&mut x, 0, 5, 10, 15);
                quarter(&mut x, 1, 6, 11, 12);
                quarter(&mut x, 2, 7, 8, 13);
                quarter(&mut x, 3, 4, 9, 14);
            }
            for (v, i) in x.iter_mut().zip(init.iter()) {
                *v = _mm512_add_epi32(*v, *i);
            }
            let ks = transpose(&x);
            if j == 0 {
                for (dst, v) in keys.iter_mut().zip(ks.iter()).take(counters.len()) {
                    store512(dst, *v);
                }
                continue;
            }
            let off = 64 * (j - 1);
            for (body, v) in bodies.iter_mut().zip(ks.iter()).take(counters.len()) {
                let Some(rest) = body.get_mut(off..) else {
                    continue;
                };
                if let Some(block) = rest.first_chunk_mut::<64>() {
                    let d = load512(block);
                    store512(block, _mm512_xor_si512(d, *v));
                } else if !rest.is_empty() {
                    xor_partial(rest, *v);
                }
            }
        }
        // The key (words and broadcast into the state) must not outlive the call on the stack.
        wipe(&mut k, [0; 8]);
        wipe(&mut init, [_mm512_setzero_si512(); 16]);
    }

    #[target_feature(enable = "avx512f")]
    fn quarter(x: &mut [__m512i; 16], a: usize, b: usize, c: usize, d: usize) {
        x[a] = _mm512_add_epi32(x[a], x[b]);
        x[d] = _mm512_rol_epi32::<16>(_mm512_xor_si512(x[d], x[a]));
        x[c] = _mm512_add_epi32(x[c], x[d]);
        x[b] = _mm512_rol_epi32::<12>(_mm512_xor_si512(x[b], x[c]));
        x[a] = _mm512_add_epi32(x[a], x[b]);
        x[d] = _mm512_rol_epi32::<8>(_mm512_xor_si512(x[d], x[a]));
        x[c] = _mm512_add_epi32(x[c], x[d]);
        x[b] = _mm512_rol_epi32::<7>(_mm512_xor_si512(x[b], x[c]));
    }

    /// `x[w]` holds word w of 16 messages' blocks; returns message i's 64-byte block in lane
    /// order, `out[i]`.
    #[target_feature(enable = "avx512f")]
    fn transpose(x: &[__m512i; 16]) -> [__m512i; 16] {
        // Pairs of words: t[2p] has words 2p, 2p+1 of messages 4c, 4c+1 in 128-bit chunk c,
        // t[2p+1] those of messages 4c+2, 4c+3.
        let mut t = [_mm512_setzero_si512(); 16];
        for p in 0..8 {
            t[2 * p] = _mm512_unpacklo_epi32(x[2 * p], x[2 * p + 1]);
            t[2 * p + 1] = _mm512_unpackhi_epi32(x[2 * p], x[2 * p + 1]);
        }
        // u[g][r]: chunk c holds words 4g..4g+3 of message 4c+r.
        let mut u = [[_mm512_setzero_si512(); 4]; 4];
        for (g, ug) in u.iter_mut().enumerate() {
            let (a_lo, a_hi, b_lo, b_hi) = (t[4 * g], t[4 * g + 1], t[4 * g + 2], t[4 * g + 3]);
            ug[0] = _mm512_unpacklo_epi64(a_lo, b_lo);
            ug[1] = _mm512_unpackhi_epi64(a_lo, b_lo);
            ug[2] = _mm512_unpacklo_epi64(a_hi, b_hi);
            ug[3] = _mm512_unpackhi_epi64(a_hi, b_hi);
        }
        // Transpose the 4×4 grid of 128-bit chunks for each r.
        let mut out = [_mm512_setzero_si512(); 16];
        for r in 0..4 {
            let v0 = _mm512_shuffle_i32x4::<0x44>(u[0][r], u[1][r]);
            let v1 = _mm512_shuffle_i32x4::<0xEE>(u[0][r], u[1][r]);
            let v2 = _mm512_shuffle_i32x4::<0x44>(u[2][r], u[3][r]);
            let v3 = _mm512_shuffle_i32x4::<0xEE>(u[2][r], u[3][r]);
            out[r] = _mm512_shuffle_i32x4::<0x88>(v0, v2);
            out[4 + r] = _mm512_shuffle_i32x4::<0xDD>(v0, v2);
            out[8 + r] = _mm512_shuffle_i32x4::<0x88>(v1, v3);
            out[12 + r] = _mm512_shuffle_i32x4::<0xDD>(v1, v3);
        }
        out
    }

    /// Poly1305 tags of up to 8 messages (their bodies as they are now: ciphertext) with the
    /// one-time keys `keys[i][..32]`, over the AEAD's input: body, zero padding to 16 bytes,
    /// then the lengths of the (empty) AAD and of the body as two little-endian u64s.
    #[target_feature(enable = "avx512f,avx512bw,avx512ifma")]
    fn poly1305(msgs: &[Message<'_>], keys: &[[u8; 64]]) -> [[u8; 16]; PLANES] {
        let n = msgs.len().min(PLANES);
        let mut r = [[0u64; PLANES]; 5]; // r0, r1, r2, 20·r1, 20·r2
                                         // Each message's last blocks: the partial block padded with zeros, then the lengths.
        let mut tails = [[0u8; 32]; PLANES];
        let mut full = [0usize; PLANES];
        let mut steps = [0usize; PLANES];
        for i in 0..n {
            let mut rb = [0u8; 16];
            rb.copy_from_slice(&keys[i][..16]);
            let rv = u128::from_le_bytes(rb) & 0x0fff_fffc_0fff_fffc_0fff_fffc_0fff_ffff;
            wipe(&mut rb, [0; 16]);
            r[0][i] = rv as u64 & M44;
            r[1][i] = (rv >> 44) as u64 & M44;
            r[2][i] = (rv >> 88) as u64;
            r[3][i] = r[1][i] * 20;
            r[4][i] = r[2][i] * 20;
            let body: &[u8] = msgs[i].body;
            full[i] = body.len() / 16;
            let rem = &body[full[i] * 16..];
            let mut at = 0;
            if !rem.is_empty() {
                tails[i][..rem.len()].copy_from_slice(rem);
                at = 16;
            }
            tails[i][at + 8..at + 16].copy_from_slice(&(body.len() as u64).to_le_bytes());
            steps[i] = full[i] + at / 16 + 1;
        }
        let rv = r.map(|l| load512(&l));
        let zero = [0u8; 16];
        let total = steps[..n].iter().copied().max().unwrap_or(0);
        let all: __mmask8 = if n == PLANES { 0xff } else { (1u8 << n) - 1 };
        let mut h = [_mm512_setzero_si512(); 3];
        // Blocks every message has in full: four at a time, one 64-byte load per message and
        // an 8×8 transpose (lanes past `n` read message 0's blocks and are never used).
        let common = full[..n].iter().copied().min().unwrap_or(0) / 4 * 4;
        let mut region: [&[u8]; PLANES] = [&msgs[0].body[..16 * common]; PLANES];
        for (i, m) in msgs.iter().enumerate().take(n) {
            region[i] = &m.body[..16 * common];
        }
        for q in 0..common / 4 {
            let mut v = [_mm512_setzero_si512(); PLANES];
            for (vi, reg) in v.iter_mut().zip(region.iter()) {
                if let Some(b) = reg[64 * q..].first_chunk::<64>() {
                    *vi = load512(b);
                }
            }
            let w = transpose8x8(&v);
            for s in 0..4 {
                absorb(&mut h, w[2 * s], w[2 * s + 1], &rv, all);
            }
        }
        // The rest, block by block, each message from its body, then its tail.
        let idx_lo = _mm512_set_epi64(14, 12, 10, 8, 6, 4, 2, 0);
        let idx_hi = _mm512_set_epi64(15, 13, 11, 9, 7, 5, 3, 1);
        for t in common..total {
            let mut src = [&zero; PLANES];
            let mut active = 0u8;
            for i in 0..n {
                let b = if t < full[i] {
                    msgs[i].body[16 * t..].first_chunk::<16>()
                } else if t < steps[i] {
                    tails[i][16 * (t - full[i])..].first_chunk::<16>()
                } else {
                    None
                };
                if let Some(b) = b {
                    src[i] = b;
                    active |= 1 << i;
                }
            }
            // Gather: a = blocks 0-3 (lo, hi pairs), b = blocks 4-7; then split lo and hi.
            let a = _mm512_inserti32x4::<3>(
                _mm512_inserti32x4::<2>(
                    _mm512_inserti32x4::<1>(_mm512_castsi128_si512(load16(src[0])), load16(src[1])),
                    load16(src[2]),
                ),
                load16(src[3]),
            );
            let b = _mm512_inserti32x4::<3>(
                _mm512_inserti32x4::<2>(
                    _mm512_inserti32x4::<1>(_mm512_castsi128_si512(load16(src[4])), load16(src[5])),
                    load16(src[6]),
                ),
                load16(src[7]),
            );
            let lo = _mm512_permutex2var_epi64(a, idx_lo, b);
            let hi = _mm512_permutex2var_epi64(a, idx_hi, b);
            absorb(&mut h, lo, hi, &rv, active & all);
        }
        let [h0, h1, h2] = h;
        let mut hs = [[0u64; PLANES]; 3];
        store512(&mut hs[0], h0);
        store512(&mut hs[1], h1);
        store512(&mut hs[2], h2);
        let mut tags = [[0u8; 16]; PLANES];
        for i in 0..n {
            let mut s = [0u8; 16];
            s.copy_from_slice(&keys[i][16..32]);
            tags[i] = finish([hs[0][i], hs[1][i], hs[2][i]], u128::from_le_bytes(s));
            wipe(&mut s, [0; 16]);
        }
        wipe(&mut tails, [[0; 32]; PLANES]);
        wipe(&mut hs, [[0; PLANES]; 3]);
        wipe(&mut r, [[0; PLANES]; 5]);
        tags
    }

    /// h = (h + m) · r for the lanes in `mask`, where m is the 16-byte block (`lo`, `hi` its
    /// little-endian halves) with the 2^128 padding bit.
    #[target_feature(enable = "avx512f,avx512bw,avx512ifma")]
    fn absorb(h: &mut [__m512i; 3], lo: __m512i, hi: __m512i, r: &[__m512i; 5], mask: __mmask8) {
        let m44 = _mm512_set1_epi64(M44 as i64);
        let m0 = _mm512_and_si512(lo, m44);
        let m1 = _mm512_and_si512(
            _mm512_or_si512(_mm512_srli_epi64::<44>(lo), _mm512_slli_epi64::<20>(hi)),
            m44,
        );
        let m2 = _mm512_or_si512(_mm512_srli_epi64::<24>(hi), _mm512_set1_epi64(1 << 40));
        let (n0, n1, n2) = mul_r(
            _mm512_add_epi64(h[0], m0),
            _mm512_add_epi64(h[1], m1),
            _mm512_add_epi64(h[2], m2),
            r,
        );
        h[0] = _mm512_mask_mov_epi64(h[0], mask, n0);
        h[1] = _mm512_mask_mov_epi64(h[1], mask, n1);
        h[2] = _mm512_mask_mov_epi64(h[2], mask, n2);
    }

    /// `v[i]` holds 8 words of message i; returns `w[k]` = word k of every message.
    #[target_feature(enable = "avx512f")]
    fn transpose8x8(v: &[__m512i; PLANES]) -> [__m512i; PLANES] {
        // t[2p + e], chunk c: word 2c + e of messages 2p and 2p + 1.
        let mut t = [_mm512_setzero_si512(); PLANES];
        for p in 0..4 {
            t[2 * p] = _mm512_unpacklo_epi64(v[2 * p], v[2 * p + 1]);
            t[2 * p + 1] = _mm512_unpackhi_epi64(v[2 * p], v[2 * p + 1]);
        }
        let mut w = [_mm512_setzero_si512(); PLANES];
        for e in 0..2 {
            let x0 = _mm512_shuffle_i32x4::<0x44>(t[e], t[2 + e]);
            let x1 = _mm512_shuffle_i32x4::<0xEE>(t[e], t[2 + e]);
            let x2 = _mm512_shuffle_i32x4::<0x44>(t[4 + e], t[6 + e]);
            let x3 = _mm512_shuffle_i32x4::<0xEE>(t[4 + e], t[6 + e]);
            w[e] = _mm512_shuffle_i32x4::<0x88>(x0, x2);
            w[2 + e] = _mm512_shuffle_i32x4::<0xDD>(x0, x2);
            w[4 + e] = _mm512_shuffle_i32x4::<0x88>(x1, x3);
            w[6 + e] = _mm512_shuffle_i32x4::<0xDD>(x1, x3);
        }
        w
    }

    /// (h0, h1, h2) · r mod 2^130 − 5, radix 2^44, limbs below 2^52 in, partly carried out
    /// (h0, h1 < 2^44 + 2^13, h2 < 2^42).
    #[target_feature(enable = "avx512f,avx512bw,avx512ifma")]
    fn mul_r(
        h0: __m512i,
        h1: __m512i,
        h2: __m512i,
        r: &[__m512i; 5],
    ) -> (__m512i, __m512i, __m512i) {
        let [r0, r1, r2, s1, s2] = *r;
        // d0 = h0 r0 + h1 20r2 + h2 20r1; d1 = h0 r1 + h1 r0 + h2 20r2; d2 = h0 r2 + h1 r1 + h2 r0
        // (2^132 ≡ 20 · 2^0 and 2^176 ≡ 20 · 2^44 mod 2^130 − 5), each as low and high 52 bits.
        let (d0l, d0h) = dot3([h0, h1, h2], [r0, s2, s1]);
        let (d1l, d1h) = dot3([h0, h1, h2], [r1, r0, s2]);
        let (d2l, d2h) = dot3([h0, h1, h2], [r2, r1, r0]);
        let m44 = _mm512_set1_epi64(M44 as i64);
        let m42 = _mm512_set1_epi64(M42 as i64);
        let n0 = _mm512_and_si512(d0l, m44);
        let c = _mm512_add_epi64(_mm512_srli_epi64::<44>(d0l), _mm512_slli_epi64::<8>(d0h));
        let t1 = _mm512_add_epi64(d1l, c);
        let n1 = _mm512_and_si512(t1, m44);
        let c = _mm512_add_epi64(_mm512_srli_epi64::<44>(t1), _mm512_slli_epi64::<8>(d1h));
        let t2 = _mm512_add_epi64(d2l, c);
        let n2 = _mm512_and_si512(t2, m42);
        let c = _mm512_add_epi64(_mm512_srli_epi64::<42>(t2), _mm512_slli_epi64::<10>(d2h));
        let n0 = _mm512_add_epi64(n0, _mm512_add_epi64(c, _mm512_slli_epi64::<2>(c)));
        let n1 = _mm512_add_epi64(n1, _mm512_srli_epi64::<44>(n0));
        let n0 = _mm512_and_si512(n0, m44);
        (n0, n1, n2)
    }

    /// Σ a[i]·b[i] of 52-bit lanes, as the sums of the low and of the high 52 bits of each
    /// 104-bit product.
    #[target_feature(enable = "avx512f,avx512bw,avx512ifma")]
    fn dot3(a: [__m512i; 3], b: [__m512i; 3]) -> (__m512i, __m512i) {
        let (mut lo, mut hi) = (_mm512_setzero_si512(), _mm512_setzero_si512());
        for (x, y) in a.into_iter().zip(b) {
            lo = _mm512_madd52lo_epu64(lo, x, y);
            hi = _mm512_madd52hi_epu64(hi, x, y);
        }
        (lo, hi)
    }

    /// The tag from a partly carried accumulator: reduce fully mod 2^130 − 5 (constant time),
    /// add s, keep the low 128 bits.
    fn finish(mut h: [u64; 3], s: u128) -> [u8; 16] {
        carry_low(&mut h);
        let c = h[2] >> 42;
        h[2] &= M42;
        h[0] += c * 5;
        carry_low(&mut h);
        // g = h + 5 − 2^130; use g if it did not go negative (h ≥ p).
        let mut g = [h[0] + 5, h[1], h[2]];
        carry_low(&mut g);
        g[2] = g[2].wrapping_sub(1 << 42);
        let use_g = (g[2] >> 63).wrapping_sub(1); // all ones when g2 ≥ 0
        for (hi, gi) in h.iter_mut().zip(g) {
            *hi = (*hi & !use_g) | (gi & use_g);
        }
        let h = u128::from(h[0]) | (u128::from(h[1]) << 44) | (u128::from(h[2]) << 88);
        h.wrapping_add(s).to_le_bytes()
    }

    /// Carries limb 0 into limb 1, then limb 1 into limb 2 (radix 2^44; limb 2 keeps any excess
    /// over 42 bits). No branch: constant-time.
    fn carry_low(h: &mut [u64; 3]) {
        for i in 0..2 {
            let c = h[i] >> 44;
            h[i] &= M44;
            h[i + 1] += c;
        }
    }

    /// An array of integers 64 bytes long, all of whose bit patterns are valid: what one 512-bit
    /// load or store moves. [`load512`] and [`store512`] take these.
    trait Bits512: Copy {}
    impl Bits512 for [u8; 64] {}
    impl Bits512 for [u32; 16] {}
    impl Bits512 for [u64; 8] {}

    #[target_feature(enable = "avx512f")]
    fn load512<T: Bits512>(w: &T) -> __m512i {
        const { assert!(size_of::<T>() == 64) };
        // SAFETY: `w` is 64 readable bytes (asserted above); the load has no alignment
        // requirement.
        unsafe { _mm512_loadu_si512((w as *const T).cast()) }
    }

    #[target_feature(enable = "avx512f")]
    fn store512<T: Bits512>(w: &mut T, v: __m512i) {
        const { assert!(size_of::<T>() == 64) };
        // SAFETY: `w` is 64 writable bytes (asserted above) of integers, which any bit pattern
        // the store leaves is valid for; the store has no alignment requirement.
        unsafe { _mm512_storeu_si512((w as *mut T).cast(), v) }
    }

    /// XORs the first `rest.len()` (< 64) bytes of `v` into `rest`.
    #[target_feature(enable = "avx512f,avx512bw")]
    fn xor_partial(rest: &mut [u8], v: __m512i) {
        let len = rest.len().min(63);
        let mask: __mmask64 = (1u64 << len) - 1;
        // SAFETY: a masked load or store touches only the bytes its mask selects (the others
        // are neither read nor written, and cannot fault): the first `len` bytes, all in `rest`.
        unsafe {
            let d = _mm512_maskz_loadu_epi8(mask, rest.as_ptr().cast());
            _mm512_mask_storeu_epi8(rest.as_mut_ptr().cast(), mask, _mm512_xor_si512(d, v));
        }
    }

    /// Overwrites a secret with `zero`. `black_box` keeps the compiler from dropping the
    /// stores as dead (what `zeroize`'s byte-wise volatile writes do, at a fraction of the cost
    /// for the kilobyte of one-time keys a group has).
    fn wipe<T: Copy>(secret: &mut T, zero: T) {
        *secret = zero;
        core::hint::black_box(secret);
    }

    #[target_feature(enable = "avx512f")]
    fn load16(b: &[u8; 16]) -> __m128i {
        // SAFETY: `b` is 16 readable bytes; the load has no alignment requirement.
        unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20poly1305::aead::{AeadInPlace, KeyInit};
    use chacha20poly1305::ChaCha20Poly1305;

    /// Deterministic test bytes (xorshift), so a failure can be replayed.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn fill(&mut self, b: &mut [u8]) {
            for x in b {
                *x = self.next() as u8;
            }
        }
    }

    fn nonce(counter: u64) -> [u8; 12] {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&counter.to_le_bytes());
        n
    }

    /// The vector code's view of a batch.
    fn messages<'a>(
        bodies: &'a mut [Vec<u8>],
        tags: &'a mut [[u8; 16]],
        counters: &[u64],
    ) -> Vec<Message<'a>> {
        bodies
            .iter_mut()
            .zip(tags.iter_mut())
            .zip(counters)
            .map(|((body, tag), &counter)| Message {
                counter,
                body,
                tag,
                ok: false,
            })
            .collect()
    }

    /// True (said on stderr) if this CPU cannot run the vector code: the test checks nothing.
    fn skipped() -> bool {
        let skip = !available();
        if skip {
            eprintln!("skipped: this CPU has no AVX-512 IFMA");
        }
        skip
    }

    fn reference_seal(key: &[u8; 32], counter: u64, body: &mut [u8]) -> [u8; 16] {
        ChaCha20Poly1305::new(key.into())
            .encrypt_in_place_detached(&nonce(counter).into(), &[], body)
            .unwrap()
            .into()
    }

    /// Seals every body in place with the reference; returns the tags.
    fn reference_seal_all(
        key: &[u8; 32],
        bodies: &mut [Vec<u8>],
        counters: &[u64],
    ) -> Vec<[u8; 16]> {
        bodies
            .iter_mut()
            .zip(counters)
            .map(|(b, &c)| reference_seal(key, c, b))
            .collect()
    }

    /// Lengths around every block boundary of both ciphers, and WireGuard's common sizes.
    const LENGTHS: &[usize] = &[
        0, 1, 15, 16, 17, 31, 32, 48, 63, 64, 65, 127, 128, 129, 255, 256, 1024, 1280, 1419, 1420,
        1424, 1440, 1500, 4096,
    ];

    fn batch(rng: &mut Rng, n: usize, same_len: bool) -> (Vec<Vec<u8>>, Vec<u64>) {
        let base = LENGTHS[rng.next() as usize % LENGTHS.len()];
        let mut bodies = Vec::new();
        let mut counters = Vec::new();
        for _ in 0..n {
            let len = if same_len {
                base
            } else {
                LENGTHS[rng.next() as usize % LENGTHS.len()]
            };
            let mut b = vec![0u8; len];
            rng.fill(&mut b);
            bodies.push(b);
            // Counters near the 32-bit word boundary and far above it.
            counters.push(match rng.next() % 3 {
                0 => rng.next() % 64,
                1 => 0xffff_fff0 + rng.next() % 32,
                _ => rng.next(),
            });
        }
        (bodies, counters)
    }

    #[test]
    fn seal_equals_the_reference_for_every_batch_shape() {
        if skipped() {
            return;
        }
        let mut rng = Rng(0x5eed_1234_abcd_0001);
        for n in (1..=40).chain([64, 70]) {
            for same_len in [true, false] {
                let mut key = [0u8; 32];
                rng.fill(&mut key);
                let (mut bodies, counters) = batch(&mut rng, n, same_len);
                let plain = bodies.clone();
                let mut tags = vec![[0u8; 16]; n];
                let mut msgs = messages(&mut bodies, &mut tags, &counters);
                assert!(seal(&key, &mut msgs));
                for i in 0..n {
                    let mut want = plain[i].clone();
                    let want_tag = reference_seal(&key, counters[i], &mut want);
                    assert_eq!(
                        bodies[i],
                        want,
                        "ciphertext, n={n} i={i} len={}",
                        want.len()
                    );
                    assert_eq!(tags[i], want_tag, "tag, n={n} i={i} len={}", want.len());
                }
            }
        }
    }

    #[test]
    fn open_decrypts_what_verifies_and_leaves_forgeries_encrypted() {
        if skipped() {
            return;
        }
        let mut rng = Rng(0x0bad_cafe_f00d_0002);
        for n in (1..=33).chain([48]) {
            let mut key = [0u8; 32];
            rng.fill(&mut key);
            let (plain, counters) = batch(&mut rng, n, n % 2 == 0);
            let mut bodies = plain.clone();
            let mut tags = reference_seal_all(&key, &mut bodies, &counters);
            // Forge some: a flipped tag bit or a flipped body bit.
            let mut forged = vec![None; n];
            for (i, f) in forged.iter_mut().enumerate() {
                match rng.next() % 5 {
                    0 => {
                        tags[i][rng.next() as usize % 16] ^= 1 << (rng.next() % 8);
                        *f = Some("tag");
                    }
                    1 if !bodies[i].is_empty() => {
                        let at = rng.next() as usize % bodies[i].len();
                        bodies[i][at] ^= 0x80;
                        *f = Some("body");
                    }
                    _ => {}
                }
            }
            let sent = bodies.clone();
            let mut msgs = messages(&mut bodies, &mut tags, &counters);
            assert!(open(&key, &mut msgs));
            let oks: Vec<bool> = msgs.iter().map(|m| m.ok).collect();
            drop(msgs);
            for i in 0..n {
                match forged[i] {
                    None => {
                        assert!(oks[i], "n={n} i={i} should verify");
                        assert_eq!(bodies[i], plain[i], "n={n} i={i} plaintext");
                    }
                    Some(what) => {
                        assert!(!oks[i], "n={n} i={i}: forged {what} verified");
                        assert_eq!(bodies[i], sent[i], "n={n} i={i}: forgery was decrypted");
                    }
                }
            }
        }
    }

    #[test]
    fn a_wrong_key_or_counter_fails_every_message() {
        if skipped() {
            return;
        }
        let mut rng = Rng(7);
        let key = [9u8; 32];
        let (mut bodies, counters) = batch(&mut rng, 12, true);
        let mut tags = reference_seal_all(&key, &mut bodies, &counters);
        let mut other = key;
        other[31] ^= 1;
        for (k, shift) in [(other, 0u64), (key, 1)] {
            let shifted: Vec<u64> = counters.iter().map(|c| c.wrapping_add(shift)).collect();
            let mut msgs = messages(&mut bodies, &mut tags, &shifted);
            for m in msgs.iter_mut() {
                m.ok = true;
            }
            assert!(open(&k, &mut msgs));
            assert!(msgs.iter().all(|m| !m.ok));
        }
    }
}
