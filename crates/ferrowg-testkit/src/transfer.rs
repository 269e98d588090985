//! Checked TCP transfers through a tunnel: pseudo-random bytes hashed on both sides, so loss,
//! corruption and reordering show; and the resident memory of a process.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::tunnel::Pair;

/// FNV-1a, 64 bits: cheap, and enough to detect corruption, loss or reordering of bytes.
pub fn fnv(h: &mut u64, data: &[u8]) {
    for b in data {
        *h ^= u64::from(*b);
        *h = h.wrapping_mul(0x100000001b3);
    }
}

/// The FNV-1a offset basis: the hash of no bytes.
pub const FNV_INIT: u64 = 0xcbf29ce484222325;

/// What a TCP transfer measured.
#[derive(Debug, Clone, Copy)]
pub struct Transfer {
    /// Bytes the sender was to send.
    pub bytes: usize,
    /// FNV-1a of the bytes written by the sender.
    pub sent_hash: u64,
    /// FNV-1a of the bytes read by the receiver.
    pub received_hash: u64,
    /// Bytes the receiver read.
    pub received: usize,
    /// From the first connection attempt to the receiver's end.
    pub elapsed: Duration,
}

impl Transfer {
    /// The received bytes per elapsed time, in Mbit/s.
    pub fn mbit_per_s(&self) -> f64 {
        self.received as f64 * 8.0 / self.elapsed.as_secs_f64() / 1e6
    }
}

/// Sends `bytes` of pseudo-random data over TCP from A to B across the tunnel (IPv4) and
/// returns what both sides saw. The whole transfer is bounded by `limit`.
pub fn tcp_transfer(pair: &Pair, bytes: usize, limit: Duration) -> Transfer {
    tcp_transfer_with(pair, bytes, limit, usize::MAX, || {})
}

/// [`tcp_transfer`], calling `hook` on the sending thread once `hook_at` bytes are written.
pub fn tcp_transfer_with(
    pair: &Pair,
    bytes: usize,
    limit: Duration,
    hook_at: usize,
    hook: impl FnOnce() + Send,
) -> Transfer {
    let deadline = Instant::now() + limit;
    let dst: SocketAddr = format!("{}:5201", pair.b.tunnel_v4)
        .parse()
        .expect("address");
    let listener = pair
        .b
        .run_in_ns(|| TcpListener::bind(("0.0.0.0", 5201)).expect("bind"));
    listener.set_nonblocking(true).expect("nonblocking");
    let start = Instant::now();
    let failed = AtomicBool::new(false);
    std::thread::scope(|s| {
        let recv = s.spawn(|| receive(listener, bytes, deadline, &failed));
        let conn = pair
            .a
            .run_in_ns(|| TcpStream::connect_timeout(&dst, Duration::from_secs(10)));
        let sent_hash = match conn {
            Ok(conn) => send(conn, bytes, deadline, hook_at, hook),
            Err(e) => Err(format!("connect to {dst}: {e}")),
        };
        // The receiver stops waiting for a sender that gave up.
        failed.store(sent_hash.is_err(), Ordering::SeqCst);
        let (received_hash, received) = recv.join().expect("receiver thread");
        let sent_hash =
            sent_hash.unwrap_or_else(|e| panic!("sender: {e} (receiver got {received} bytes)"));
        Transfer {
            bytes,
            sent_hash,
            received_hash,
            received,
            elapsed: start.elapsed(),
        }
    })
}

fn receive(
    listener: TcpListener,
    bytes: usize,
    deadline: Instant,
    failed: &AtomicBool,
) -> (u64, usize) {
    let mut conn = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e)
                if e.kind() == ErrorKind::WouldBlock
                    && Instant::now() < deadline
                    && !failed.load(Ordering::SeqCst) =>
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => return (FNV_INIT, 0),
        }
    };
    conn.set_nonblocking(false).expect("blocking");
    conn.set_read_timeout(Some(Duration::from_millis(500)))
        .expect("timeout");
    let mut h = FNV_INIT;
    let mut buf = vec![0u8; 1 << 16];
    let mut got = 0usize;
    while got < bytes && Instant::now() < deadline && !failed.load(Ordering::SeqCst) {
        match conn.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                fnv(&mut h, &buf[..n]);
                got += n;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(_) => break,
        }
    }
    (h, got)
}

fn send(
    mut conn: TcpStream,
    bytes: usize,
    deadline: Instant,
    hook_at: usize,
    hook: impl FnOnce(),
) -> Result<u64, String> {
    conn.set_write_timeout(Some(Duration::from_millis(500)))
        .map_err(|e| e.to_string())?;
    let mut hook = Some(hook);
    let mut h = FNV_INIT;
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut buf = vec![0u8; 1 << 16];
    let mut sent = 0usize;
    while sent < bytes {
        if sent >= hook_at {
            if let Some(f) = hook.take() {
                f();
            }
        }
        let n = buf.len().min(bytes - sent);
        for chunk in buf[..n].chunks_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let w = state.to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
        fnv(&mut h, &buf[..n]);
        let mut off = 0;
        while off < n {
            if Instant::now() >= deadline {
                return Err(format!("deadline passed after {} bytes", sent + off));
            }
            match conn.write(&buf[off..n]) {
                Ok(k) => off += k,
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(format!("write after {} bytes: {e}", sent + off)),
            }
        }
        sent += n;
    }
    conn.shutdown(std::net::Shutdown::Write)
        .map_err(|e| e.to_string())?;
    Ok(h)
}

/// The resident set size of process `pid` in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
