//! The UDP socket against the real kernel, each test in a network namespace of its own (only
//! its loopback is used): 32-datagram batches to itself over IPv4 and IPv6, forced buffer sizes,
//! fwmark, receive-drop counting, and GSO sends received with and without GRO. Needs root;
//! FERROWG_SKIP_ROOT_TESTS=1 skips.

mod common;

use std::net::SocketAddr;

use common::WAIT;
use ferrowg_sys::{RecvMeta, Transmit, UdpSocket, DEFAULT_BUFFER_SIZE};
use ferrowg_testkit::Netns;

/// Receives exactly `want` datagrams (5 s bound per wait) into fresh 64 KiB buffers.
fn recv_n(sock: &UdpSocket, want: usize) -> Vec<(RecvMeta, Vec<u8>)> {
    let mut out = Vec::new();
    let mut bufs = vec![vec![0u8; 65536]; 64];
    let mut meta = vec![RecvMeta::default(); 64];
    while out.len() < want {
        let n = sock.recv_batch(&mut bufs, &mut meta, WAIT).unwrap();
        assert_ne!(n, 0, "timed out after {} of {want} datagrams", out.len());
        for (m, b) in meta.iter().zip(&bufs).take(n) {
            out.push((*m, b[..m.len].to_vec()));
        }
    }
    assert_eq!(out.len(), want, "more datagrams than sent");
    out
}

/// Sends 32 datagrams of distinct lengths from `sock` to itself at `dst` in one batch and checks
/// every length, payload and source address.
fn batch_of_32_to_self(sock: &UdpSocket, dst: SocketAddr) {
    let payloads: Vec<Vec<u8>> = (0..32u8)
        .map(|i| {
            (0..600 + usize::from(i) * 17)
                .map(|j| i ^ j as u8)
                .collect()
        })
        .collect();
    let msgs: Vec<Transmit<'_>> = payloads.iter().map(|p| Transmit::new(dst, p)).collect();
    assert_eq!(sock.send_batch(&msgs, WAIT).unwrap(), 32);
    let got = recv_n(sock, 32);
    for (i, (meta, data)) in got.iter().enumerate() {
        assert_eq!(
            meta.src, dst,
            "source of datagram {i} (its own address, unmapped)"
        );
        assert_eq!(meta.len, payloads[i].len());
        assert_eq!(meta.stride, meta.len);
        assert!(!meta.truncated);
        assert_eq!(data, &payloads[i], "datagram {i}: loopback keeps order");
    }
}

#[test]
fn dual_stack_batch_to_itself_over_ipv4_and_ipv6() {
    let Some(ns) = Netns::for_test("udp-batch") else {
        return;
    };
    ns.run_in(|| {
        let sock = UdpSocket::bind(0).unwrap();
        assert!(sock.is_dual_stack());
        assert_ne!(sock.port(), 0);
        batch_of_32_to_self(&sock, SocketAddr::from(([127, 0, 0, 1], sock.port())));
        batch_of_32_to_self(
            &sock,
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, sock.port())),
        );
        assert_eq!(sock.rx_dropped(), 0);
    });
}

#[test]
fn single_family_sockets_batch_to_themselves() {
    let Some(ns) = Netns::for_test("udp-single") else {
        return;
    };
    ns.run_in(|| {
        let v4 = UdpSocket::bind_addr("127.0.0.1:0".parse().unwrap()).unwrap();
        batch_of_32_to_self(&v4, v4.local_addr());
        let v6 = UdpSocket::bind_addr("[::1]:0".parse().unwrap()).unwrap();
        assert!(!v6.is_dual_stack());
        batch_of_32_to_self(&v6, v6.local_addr());
        // An IPv6-only socket cannot reach IPv4.
        let err = v6
            .send_to(b"x", "127.0.0.1:9".parse().unwrap())
            .unwrap_err();
        assert!(
            matches!(err, ferrowg_sys::Error::AddressFamily { .. }),
            "{err}"
        );
    });
}

#[test]
fn a_fixed_port_is_bound_on_both_families() {
    let Some(ns) = Netns::for_test("udp-port") else {
        return;
    };
    ns.run_in(|| {
        // The namespace is ours alone, so WireGuard's usual port is free. (Probing for a free
        // port, closing it and binding again races with other test threads' fork+exec of `ip`,
        // which briefly holds a copy of every descriptor.)
        let port = 51820;
        let sock = UdpSocket::bind(port).unwrap();
        assert_eq!(sock.port(), port);
        let other = UdpSocket::bind_addr("127.0.0.1:0".parse().unwrap()).unwrap();
        other
            .send_to(
                b"to the fixed port",
                SocketAddr::from(([127, 0, 0, 1], port)),
            )
            .unwrap();
        let got = recv_n(&sock, 1);
        assert_eq!(got[0].0.src, other.local_addr());
        // The port is taken for IPv4 too.
        let err = UdpSocket::bind_addr(SocketAddr::from(([0, 0, 0, 0], port))).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EADDRINUSE), "{err}");
    });
}

#[test]
fn forced_buffer_sizes_and_fwmark_are_applied() {
    let Some(ns) = Netns::for_test("udp-opts") else {
        return;
    };
    ns.run_in(|| {
        let sock = UdpSocket::bind(0).unwrap();
        let sizes = sock.set_buffer_sizes(DEFAULT_BUFFER_SIZE).unwrap();
        // As root SO_*BUFFORCE bypasses net.core.[rw]mem_max (read-only in a netns).
        assert!(sizes.recv >= DEFAULT_BUFFER_SIZE, "{sizes:?}");
        assert!(sizes.send >= DEFAULT_BUFFER_SIZE, "{sizes:?}");
        assert_eq!(sock.buffer_sizes().unwrap(), sizes);

        assert_eq!(sock.mark().unwrap(), 0);
        sock.set_mark(0xca6c).unwrap();
        assert_eq!(sock.mark().unwrap(), 0xca6c);
        sock.set_mark(0x8000_0001).unwrap();
        assert_eq!(sock.mark().unwrap(), 0x8000_0001);
    });
}

#[test]
fn kernel_receive_drops_are_counted() {
    let Some(ns) = Netns::for_test("udp-drops") else {
        return;
    };
    ns.run_in(|| {
        let rx = UdpSocket::bind_addr("127.0.0.1:0".parse().unwrap()).unwrap();
        // The smallest buffer the kernel allows: a handful of datagrams.
        rx.set_buffer_sizes(1).unwrap();
        let tx = UdpSocket::bind_addr("127.0.0.1:0".parse().unwrap()).unwrap();
        let payload = [0x5a; 1000];
        let msgs = vec![Transmit::new(rx.local_addr(), &payload); 100];
        assert_eq!(tx.send_batch(&msgs, WAIT).unwrap(), 100);

        // Drain what fit; the count travels only with datagrams queued after a drop...
        let mut bufs = vec![vec![0u8; 2048]; 128];
        let mut meta = vec![RecvMeta::default(); 128];
        let mut queued = 0;
        while rx.wait_readable(Some(std::time::Duration::ZERO)).unwrap() {
            queued += rx.recv_batch(&mut bufs, &mut meta, WAIT).unwrap();
        }
        assert!(queued > 0 && queued < 100, "{queued} of 100 datagrams fit");
        // ...so one more datagram brings it.
        tx.send_to(b"after the drops", rx.local_addr()).unwrap();
        let got = recv_n(&rx, 1);
        assert_eq!(&got[0].1, b"after the drops");
        let dropped = rx.rx_dropped() as usize;
        assert_eq!(dropped, 100 - queued, "drops counted by SO_RXQ_OVFL");
    });
}

#[test]
fn gso_send_is_split_without_gro_and_kept_whole_with_it() {
    let Some(ns) = Netns::for_test("udp-gso") else {
        return;
    };
    ns.run_in(|| {
        let tx = UdpSocket::bind(0).unwrap();
        let plain = UdpSocket::bind(0).unwrap();
        let gro = UdpSocket::bind(0).unwrap();
        gro.set_gro(true).unwrap();
        let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();

        for dst_ip in ["127.0.0.1", "::1"] {
            let to = |s: &UdpSocket| SocketAddr::new(dst_ip.parse().unwrap(), s.port());
            let src = SocketAddr::new(dst_ip.parse().unwrap(), tx.port());

            // Without GRO the receiver sees the ten 1000-byte datagrams the kernel cut.
            tx.send_gso(&data, 1000, to(&plain)).unwrap();
            let got = recv_n(&plain, 10);
            for (i, (meta, bytes)) in got.iter().enumerate() {
                assert_eq!(meta.src, src);
                assert_eq!(bytes, &data[i * 1000..(i + 1) * 1000]);
            }

            // With GRO they arrive as one buffer with a 1000-byte stride; mixed with a plain
            // datagram in the same batch call.
            let msgs = [
                Transmit::new(to(&gro), &data).with_segment_size(1000),
                Transmit::new(to(&gro), b"single"),
            ];
            assert_eq!(tx.send_batch(&msgs, WAIT).unwrap(), 2);
            let got = recv_n(&gro, 2);
            assert_eq!(got[0].0.len, 10_000);
            assert_eq!(got[0].0.stride, 1000);
            assert_eq!(got[0].1, data);
            assert_eq!(got[1].1, b"single");
            assert_eq!(got[1].0.stride, 6);
        }
    });
}
