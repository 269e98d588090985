//! `Message::parse` and every accessor on arbitrary bytes, checked against the message table
//! (whitepaper §5.4); plus the IP header helpers the data path uses on decrypted packets.
#![no_main]

use ferrowg_proto::device::{ip_destination, ip_length_and_source};
use ferrowg_proto::messages::{padded_len, Message, ParseError};
use libfuzzer_sys::fuzz_target;

fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fuzz_target!(|data: &[u8]| {
    match Message::parse(data) {
        Err(ParseError::TooShort) => assert!(data.len() < 4),
        Err(ParseError::UnknownType) => {
            assert!(data.len() >= 4);
            assert!(data[1..4] != [0, 0, 0] || !(1..=4).contains(&data[0]));
        }
        Err(ParseError::BadLength) => {
            assert!(data[1..4] == [0, 0, 0] && (1..=4).contains(&data[0]));
        }
        Ok(Message::Initiation(m)) => {
            assert_eq!((data[0], data.len()), (1, 148));
            assert_eq!(m.bytes(), data);
            assert_eq!(m.sender_index(), le32(data, 4));
            assert_eq!(&m.unencrypted_ephemeral()[..], &data[8..40]);
            assert_eq!(&m.encrypted_static()[..], &data[40..88]);
            assert_eq!(&m.encrypted_timestamp()[..], &data[88..116]);
        }
        Ok(Message::Response(m)) => {
            assert_eq!((data[0], data.len()), (2, 92));
            assert_eq!(m.bytes(), data);
            assert_eq!(m.sender_index(), le32(data, 4));
            assert_eq!(m.receiver_index(), le32(data, 8));
            assert_eq!(&m.unencrypted_ephemeral()[..], &data[12..44]);
            assert_eq!(&m.encrypted_nothing()[..], &data[44..60]);
        }
        Ok(Message::CookieReply(m)) => {
            assert_eq!((data[0], data.len()), (3, 64));
            assert_eq!(m.receiver_index(), le32(data, 4));
            assert_eq!(&m.nonce()[..], &data[8..32]);
            assert_eq!(&m.encrypted_cookie()[..], &data[32..64]);
        }
        Ok(Message::Transport(m)) => {
            assert!(data[0] == 4 && data.len() >= 32);
            assert_eq!(m.receiver_index(), le32(data, 4));
            let counter = u64::from_le_bytes(data[8..16].try_into().unwrap());
            assert_eq!(m.counter(), counter);
            assert_eq!(m.ciphertext_len(), data.len() - 16);
        }
    }
    if Message::parse(data).is_ok() {
        assert!(data[1..4] == [0, 0, 0]);
    }

    // The IP helpers read only within the packet and agree with each other.
    let dst = ip_destination(data);
    let len_src = ip_length_and_source(data);
    if let Some((len, _)) = len_src {
        assert!(len <= data.len());
        assert!(dst.is_some());
        assert_eq!(dst.map(|d| d.is_ipv4()), Some(data[0] >> 4 == 4));
    }
    if let Some(&first) = data.first() {
        let mtu = usize::from(first) * 16;
        let n = padded_len(data.len(), mtu);
        assert!(n >= data.len());
        assert!(n == data.len() || n.is_multiple_of(16) || n == mtu);
    }
});
