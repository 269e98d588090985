//! TUN devices against the real kernel, each test in a network namespace of its own (see
//! `common/mod.rs` for the topology): packets routed into the TUN come out of the batch reads
//! intact, packets written into it reach sockets and the ICMP responder, multi-queue spreads
//! flows, the virtio-net header mode carries USO super-packets, and deleting the interface is
//! reported as `InterfaceGone`. Needs root; FERROWG_SKIP_ROOT_TESTS=1 skips.

mod common;

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::{Duration, Instant};

use common::WAIT;
use ferrowg_sys::{
    netdev, Error, Offload, RecvMeta, Transmit, Tun, TunConfig, TunQueue, UdpSocket, VirtioNetHdr,
    VIRTIO_NET_HDR_GSO_UDP_L4, VIRTIO_NET_HDR_LEN,
};
use ferrowg_testkit::Netns;

/// Reads from `queue` until `want` packets satisfy `keep` or 5 s pass; returns them and the
/// largest number of packets a single `read_batch` returned.
fn collect(
    queue: &TunQueue,
    want: usize,
    skip_header: usize,
    keep: impl Fn(&[u8]) -> bool,
) -> (Vec<Vec<u8>>, usize) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut bufs = vec![vec![0u8; 65536 + VIRTIO_NET_HDR_LEN]; 32];
    let mut sizes = vec![0usize; 32];
    let (mut found, mut largest) = (Vec::new(), 0);
    while found.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "timed out with {} of {want} packets",
            found.len()
        );
        let n = queue.read_batch(&mut bufs, &mut sizes, Some(left)).unwrap();
        largest = largest.max(n);
        for (buf, &size) in bufs.iter().zip(&sizes).take(n) {
            if keep(&buf[skip_header..size]) {
                found.push(buf[..size].to_vec());
            }
        }
    }
    (found, largest)
}

/// Opens a TUN device in the current namespace, sets its MTU and addresses, and brings it up.
fn configured_tun(ns: &Netns, config: &TunConfig, net: u8) -> Tun {
    let tun = Tun::open(config).expect("create TUN");
    tun.set_mtu(1420).unwrap();
    ns.ip(&[
        "addr",
        "add",
        &format!("10.77.{net}.1/24"),
        "dev",
        tun.name(),
    ]);
    let addr6 = format!("fd00:77:{net}::1");
    ns.ip(&[
        "addr",
        "add",
        &format!("{addr6}/64"),
        "dev",
        tun.name(),
        "nodad",
    ]);
    tun.set_up(true).unwrap();
    wait_until_usable(addr6.parse().unwrap());
    tun
}

/// Even with `nodad`, an IPv6 address is unusable until a kernel work item has run after the
/// link came up, and deaf to incoming packets until its local route is in (a little later:
/// binding to it can already succeed then). A datagram to itself proves both.
fn wait_until_usable(addr: Ipv6Addr) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let (mut bufs, mut meta) = ([[0u8; 16]], [RecvMeta::default()]);
    loop {
        if let Ok(sock) = UdpSocket::bind_addr(SocketAddr::from((addr, 0))) {
            let sent = sock.send_to(b"probe", sock.local_addr()).is_ok();
            let short = Some(Duration::from_millis(20));
            if sent && sock.recv_batch(&mut bufs, &mut meta, short).unwrap() == 1 {
                return;
            }
        }
        assert!(Instant::now() < deadline, "{addr} still unusable after 5 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn udp_routed_into_the_tun_comes_out_of_read_batch() {
    let Some(ns) = Netns::for_test("tun-out") else {
        return;
    };
    ns.run_in(|| {
        let name = common::tun_name("o");
        let tun = configured_tun(&ns, &TunConfig::new(&name), 1);
        assert_eq!(tun.name(), name);
        assert_eq!(tun.mtu().unwrap(), 1420);
        assert!(netdev::is_up(&name).unwrap());
        assert_eq!(netdev::index(&name).unwrap(), tun.index());
        assert_eq!(tun.queues().len(), 1);
        // The transmit queue length reads back as set (TUN devices start at 500).
        assert_eq!(netdev::tx_queue_len(&name).unwrap(), 500);
        netdev::set_tx_queue_len(&name, 4321).unwrap();
        assert_eq!(netdev::tx_queue_len(&name).unwrap(), 4321);
        assert!(netdev::tx_queue_len("nosuchif0").is_err());

        let sock = UdpSocket::bind(0).unwrap();
        let peer4: SocketAddr = "10.77.1.2:9999".parse().unwrap();
        let peer6: SocketAddr = "[fd00:77:1::2]:9999".parse().unwrap();
        let payloads: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 100 + usize::from(i)]).collect();
        let mut msgs: Vec<Transmit<'_>> =
            payloads.iter().map(|p| Transmit::new(peer4, p)).collect();
        msgs.push(Transmit::new(peer6, b"over ipv6"));
        assert_eq!(sock.send_batch(&msgs, WAIT).unwrap(), 9);

        // Everything else a fresh interface sends (IPv6 router solicitations, MLD) is skipped.
        let is_ours = |p: &[u8]| common::parse_udp(p).is_some_and(|u| u.dst.port() == 9999);
        let (pkts, largest) = collect(&tun.queues()[0], 9, 0, is_ours);
        assert!(
            largest >= 2,
            "read_batch never returned more than one packet"
        );

        let mut v4 = 0;
        for pkt in &pkts {
            let udp = common::parse_udp(pkt).unwrap();
            assert!(udp.checksum_ok, "{udp:?}");
            assert_eq!(udp.src.port(), sock.port());
            if udp.dst == peer4 {
                // The IPv4 header as the kernel built it.
                assert_eq!(pkt[0], 0x45, "version 4, no options");
                assert_eq!(pkt[9], common::PROTO_UDP);
                assert_eq!(&pkt[12..16], &[10, 77, 1, 1]);
                assert_eq!(&pkt[16..20], &[10, 77, 1, 2]);
                assert_eq!(udp.payload, payloads[v4], "order and contents kept");
                v4 += 1;
            } else {
                assert_eq!(udp.dst, peer6);
                assert_eq!(udp.src.ip().to_string(), "fd00:77:1::1");
                assert_eq!(udp.payload, b"over ipv6");
            }
        }
        assert_eq!(v4, 8);
    });
}

#[test]
fn packets_written_into_the_tun_reach_sockets_and_icmp() {
    let Some(ns) = Netns::for_test("tun-in") else {
        return;
    };
    ns.run_in(|| {
        let tun = configured_tun(&ns, &TunConfig::new(common::tun_name("i")), 2);
        let queue = &tun.queues()[0];
        let sock = UdpSocket::bind(0).unwrap();
        let peer = SocketAddrV4::new(Ipv4Addr::new(10, 77, 2, 2), 5555);
        let local = SocketAddrV4::new(Ipv4Addr::new(10, 77, 2, 1), sock.port());

        // A batch of crafted IPv4 UDP packets, plus one IPv6.
        let mut pkts: Vec<Vec<u8>> = (0..8u8)
            .map(|i| common::ipv4_udp(peer, local, &vec![i; 50 + usize::from(i)]))
            .collect();
        let peer6: SocketAddrV6 = "[fd00:77:2::2]:6666".parse().unwrap();
        let local6 = SocketAddrV6::new("fd00:77:2::1".parse().unwrap(), sock.port(), 0, 0);
        pkts.push(common::ipv6_udp(peer6, local6, b"v6 in"));
        assert_eq!(queue.write_batch(&pkts, WAIT).unwrap(), 9);

        let mut bufs = vec![vec![0u8; 2048]; 16];
        let mut meta = vec![RecvMeta::default(); 16];
        let mut got = 0;
        while got < 9 {
            let n = sock
                .recv_batch(&mut bufs[got..], &mut meta[got..], WAIT)
                .unwrap();
            assert_ne!(n, 0, "timed out after {got} datagrams");
            got += n;
        }
        for (i, m) in meta[..8].iter().enumerate() {
            // The dual-stack socket reports the IPv4 peer as plain IPv4.
            assert_eq!(m.src, SocketAddr::V4(peer));
            assert_eq!(m.len, 50 + i);
            assert!(bufs[i][..m.len].iter().all(|&b| usize::from(b) == i));
        }
        assert_eq!(meta[8].src, SocketAddr::V6(peer6));
        assert_eq!(&bufs[8][..meta[8].len], b"v6 in");

        // The kernel answers a crafted ping through the TUN.
        let ping = common::ipv4_echo_request(*peer.ip(), *local.ip(), 0x4242, 7, b"ping data");
        queue.write(&ping).unwrap();
        let (replies, _) = collect(queue, 1, 0, |p| common::parse_echo_reply(p).is_some());
        let (src, id, seq, data) = common::parse_echo_reply(&replies[0]).unwrap();
        assert_eq!((src, id, seq), (*local.ip(), 0x4242, 7));
        assert_eq!(data, b"ping data");

        // Not an IP packet: the kernel refuses it, and the error is not "interface gone".
        let err = queue.write(&[0x00; 20]).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");
    });
}

#[test]
fn deleting_the_interface_is_reported_as_gone() {
    let Some(ns) = Netns::for_test("tun-del") else {
        return;
    };
    ns.run_in(|| {
        let name = common::tun_name("d");
        let tun = configured_tun(&ns, &TunConfig::new(&name), 3);
        let queue = &tun.queues()[0];
        tun.check_attached().unwrap();

        // A reader blocked in read (as the daemon's TUN thread would be) while the interface is
        // deleted wakes up with InterfaceGone well before its timeout.
        let (err, waited) = std::thread::scope(|scope| {
            let (started_tx, started_rx) = std::sync::mpsc::channel();
            let reader = scope.spawn(move || {
                let mut buf = [0u8; 2048];
                started_tx.send(()).unwrap();
                let start = Instant::now();
                loop {
                    match queue.read(&mut buf, WAIT) {
                        // IPv6 chatter queued before the deletion may still be delivered.
                        Ok(Some(_)) => continue,
                        Ok(None) => panic!("read timed out instead of reporting the deletion"),
                        Err(e) => break (e, start.elapsed()),
                    }
                }
            });
            started_rx.recv().unwrap();
            ns.ip(&["link", "del", &name]);
            reader.join().unwrap()
        });
        assert!(!netdev::exists(&name).unwrap());
        assert!(err.is_interface_gone(), "{err}");
        assert!(waited < Duration::from_secs(5));
        assert!(matches!(&err, Error::InterfaceGone { name: n } if *n == name));
        assert!(queue
            .write(&common::ipv4_echo_request(
                Ipv4Addr::new(10, 77, 3, 2),
                Ipv4Addr::new(10, 77, 3, 1),
                1,
                1,
                b""
            ))
            .unwrap_err()
            .is_interface_gone());
        assert!(tun.check_attached().unwrap_err().is_interface_gone());
    });
}

#[test]
fn multi_queue_spreads_flows_over_the_queues() {
    let Some(ns) = Netns::for_test("tun-mq") else {
        return;
    };
    ns.run_in(|| {
        let tun = configured_tun(&ns, &TunConfig::new(common::tun_name("m")).queues(2), 4);
        assert_eq!(tun.queues().len(), 2);
        // 32 sockets = 32 flows (source ports), one datagram each.
        let socks: Vec<UdpSocket> = (0..32).map(|_| UdpSocket::bind(0).unwrap()).collect();
        let dst: SocketAddr = "10.77.4.2:7777".parse().unwrap();
        for s in &socks {
            s.send_to(b"mq", dst).unwrap();
        }
        let is_ours = |p: &[u8]| common::parse_udp(p).is_some_and(|u| u.dst == dst);
        let mut per_queue = [0usize; 2];
        let deadline = Instant::now() + Duration::from_secs(5);
        while per_queue.iter().sum::<usize>() < 32 {
            assert!(Instant::now() < deadline, "timed out: {per_queue:?}");
            for (i, q) in tun.queues().iter().enumerate() {
                let mut bufs = vec![vec![0u8; 2048]; 32];
                let mut sizes = [0usize; 32];
                let n = q.read_batch(&mut bufs, &mut sizes, Some(Duration::from_millis(20)));
                for (b, &s) in bufs.iter().zip(&sizes).take(n.unwrap()) {
                    per_queue[i] += usize::from(is_ours(&b[..s]));
                }
            }
        }
        assert_eq!(per_queue.iter().sum::<usize>(), 32);
        // 32 flows hashed onto 2 queues all landing on one has probability 2^-31.
        assert!(per_queue.iter().all(|&n| n > 0), "{per_queue:?}");
    });
}

#[test]
fn vnet_header_mode_carries_uso_super_packets() {
    let Some(ns) = Netns::for_test("tun-vnet") else {
        return;
    };
    ns.run_in(|| {
        let config = TunConfig::new(common::tun_name("v")).vnet_hdr(true);
        let tun = configured_tun(&ns, &config, 5);
        assert!(tun.has_vnet_hdr());
        let offload = tun.set_offload(Offload::ALL).unwrap();
        assert!(offload.checksum && offload.tso);

        let sock = UdpSocket::bind(0).unwrap();
        let dst: SocketAddr = "10.77.5.2:8888".parse().unwrap();
        let is_ours =
            |p: &[u8]| p[0] >> 4 == 4 && p[9] == common::PROTO_UDP && p[22..24] == [0x22, 0xb8];

        if offload.uso {
            // Four 1000-byte datagrams handed to the kernel as one GSO send come out of the TUN
            // as one super-packet described by the virtio-net header.
            sock.send_gso(&[0xab; 4000], 1000, dst).unwrap();
            let (pkts, _) = collect(&tun.queues()[0], 1, VIRTIO_NET_HDR_LEN, is_ours);
            let hdr = VirtioNetHdr::parse(&pkts[0]).unwrap();
            assert_eq!(hdr.gso_type, VIRTIO_NET_HDR_GSO_UDP_L4, "{hdr:?}");
            assert_eq!(hdr.gso_size, 1000);
            assert_eq!(pkts[0].len(), VIRTIO_NET_HDR_LEN + 20 + 8 + 4000);
        }

        // Writing: a zero header means "a plain, complete packet".
        let peer = SocketAddrV4::new(Ipv4Addr::new(10, 77, 5, 2), 5555);
        let local = SocketAddrV4::new(Ipv4Addr::new(10, 77, 5, 1), sock.port());
        let pkt = common::ipv4_udp(peer, local, b"with vnet header");
        let framed = [&VirtioNetHdr::default().to_bytes()[..], &pkt].concat();
        tun.queues()[0].write(&framed).unwrap();
        let mut bufs = [[0u8; 256]];
        let mut meta = [RecvMeta::default()];
        assert_eq!(sock.recv_batch(&mut bufs, &mut meta, WAIT).unwrap(), 1);
        assert_eq!(&bufs[0][..meta[0].len], b"with vnet header");
        assert_eq!(meta[0].src, SocketAddr::V4(peer));

        // The same, gathered from three pieces by one `writev`.
        let pkt = common::ipv4_udp(peer, local, b"gathered from pieces");
        let hdr = VirtioNetHdr::default().to_bytes();
        let parts = [
            std::io::IoSlice::new(&hdr),
            std::io::IoSlice::new(&pkt[..23]),
            std::io::IoSlice::new(&pkt[23..]),
        ];
        assert!(tun.queues()[0].write_vectored(&parts, WAIT).unwrap());
        assert_eq!(sock.recv_batch(&mut bufs, &mut meta, WAIT).unwrap(), 1);
        assert_eq!(&bufs[0][..meta[0].len], b"gathered from pieces");

        assert_eq!(
            tun.set_offload(Offload::default()).unwrap(),
            Offload::default()
        );
    });
}

#[test]
fn plain_device_refuses_offloads() {
    let Some(ns) = Netns::for_test("tun-nooff") else {
        return;
    };
    ns.run_in(|| {
        let tun = Tun::open(&TunConfig::new(common::tun_name("n"))).unwrap();
        // The kernel would accept it and then hand over super-packets nobody can take apart.
        let err = tun.set_offload(Offload::ALL).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
    });
}

#[test]
fn read_batch_at_leaves_room_in_front_of_each_packet() {
    let Some(ns) = Netns::for_test("tun-at") else {
        return;
    };
    ns.run_in(|| {
        let tun = configured_tun(&ns, &TunConfig::new(common::tun_name("a")), 6);
        let queue = &tun.queues()[0];
        let sock = UdpSocket::bind(0).unwrap();
        let peer: SocketAddr = "10.77.6.2:9999".parse().unwrap();
        let is_ours = |p: &[u8]| common::parse_udp(p).is_some_and(|u| u.dst.port() == 9999);
        const AT: usize = 16;
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut bufs = vec![vec![0xaau8; AT + 2048]; 4];
        let mut sizes = [0usize; 4];
        sock.send_to(b"after the room", peer).unwrap();
        let found = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "the datagram never came out of the TUN device"
            );
            let n = queue
                .read_batch_at(&mut bufs, AT, &mut sizes, Some(left))
                .unwrap();
            if let Some(i) = (0..n).find(|&i| is_ours(&bufs[i][AT..AT + sizes[i]])) {
                break i;
            }
        };
        // The packet starts at AT, its size counts from there, and the room is untouched.
        let udp = common::parse_udp(&bufs[found][AT..AT + sizes[found]]).unwrap();
        assert_eq!(udp.payload, b"after the room");
        assert!(bufs[found][..AT].iter().all(|&b| b == 0xaa));

        // A buffer with no room past AT is refused before anything is read.
        let mut tiny = [vec![0u8; AT]];
        let err = queue
            .read_batch_at(&mut tiny, AT, &mut [0], Some(Duration::ZERO))
            .unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
        // A packet longer than the room past AT is dropped and counted as truncated.
        let before = queue.truncated();
        sock.send_to(&[7u8; 600], peer).unwrap();
        let mut small = [vec![0u8; AT + 100]];
        let deadline = Instant::now() + Duration::from_secs(5);
        while queue.truncated() == before {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the packet was never counted as truncated");
            let mut size = [0];
            let n = queue
                .read_batch_at(&mut small, AT, &mut size, Some(Duration::from_millis(50)))
                .unwrap();
            // Whatever else the fresh interface sends fits; the 600-byte packet must not come
            // out cut to the room.
            assert!(n == 0 || size[0] < 100, "a cut packet came out: {size:?}");
        }
    });
}
