//! How one daemon is tuned: the choices a user may make on `ferrowg daemon`'s command line,
//! fixed at start and handed down to the parts they concern (the TUN device, the AEAD). The
//! defaults are what every daemon should run with; each field says what turning it away from
//! its default is for.

/// Which ChaCha20-Poly1305 code seals and opens batches of datagrams.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Aead {
    /// The AVX-512 vector code ([`ferrowg_simd::aead16`]) for batches, where the CPU has
    /// AVX-512F and IFMA; ring for single datagrams, small batches and every other CPU.
    #[default]
    Auto,
    /// ring for every datagram (to compare with, or to rule out the vector code).
    Ring,
}

/// The daemon's start-up choices; [`Tuning::default`] is the daemon as it should run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tuning {
    /// Which AEAD code handles batches.
    pub aead: Aead,
    /// Ask the TUN device for TSO/USO super-packets and write GRO super-packets to it. Off:
    /// one plain IP packet per read and write (for a kernel or a path where offloads misbehave).
    pub offload: bool,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            aead: Aead::Auto,
            offload: true,
        }
    }
}
