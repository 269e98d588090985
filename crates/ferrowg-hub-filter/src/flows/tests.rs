//! The flow table: one entry for both directions, timeouts per state, bounded size, eviction
//! order.

use std::net::IpAddr;

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn key(n: u16) -> (FlowKey, bool) {
    FlowKey::flow(17, ip("10.0.0.1"), n, ip("10.0.0.2"), 53)
}

#[test]
fn both_directions_find_one_key() {
    let (k1, a1) = FlowKey::flow(6, ip("10.0.0.2"), 4000, ip("10.0.0.1"), 443);
    let (k2, a2) = FlowKey::flow(6, ip("10.0.0.1"), 443, ip("10.0.0.2"), 4000);
    assert_eq!(k1, k2);
    assert_ne!(a1, a2);
    // Other protocol, other family, or a fragment entry: other keys.
    assert_ne!(
        k1,
        FlowKey::flow(17, ip("10.0.0.2"), 4000, ip("10.0.0.1"), 443).0
    );
    let v6 = FlowKey::flow(6, ip("::a00:2"), 4000, ip("::a00:1"), 443).0;
    assert_ne!(k1, v6);
    assert_ne!(
        FlowKey::fragment(6, ip("10.0.0.2"), ip("10.0.0.1"), 4000),
        k1
    );
}

#[test]
fn entries_expire_after_their_state_timeout() {
    let t = Timeouts::default();
    let mut table = FlowTable::new(16, t);
    let i = table.insert(key(1).0, 100, State::Unreplied, true);
    assert_eq!(table.get(&key(1).0, 100 + t.unreplied - 1), Some(i));
    table.touch(i, 120, State::Assured);
    assert_eq!(table.get(&key(1).0, 120 + t.assured - 1), Some(i));
    assert_eq!(table.get(&key(1).0, 120 + t.assured), None);
    assert_eq!((table.len(), table.expired), (0, 1));
}

#[test]
fn reaping_takes_expired_heads_within_budget() {
    let t = Timeouts::default();
    let mut table = FlowTable::new(100, t);
    for n in 0..10 {
        table.insert(key(n).0, u64::from(n), State::Unreplied, true);
    }
    table.insert(key(99).0, 0, State::TcpEstablished, true);
    // At 35 s the flows last seen at 0..=5 have expired; the established one has not.
    assert_eq!(table.expire(35, 4), 4);
    assert_eq!(table.expire(35, 4), 2);
    assert_eq!(table.expire(35, 4), 0);
    assert_eq!(table.len(), 5);
    assert!(table.get(&key(99).0, 35).is_some());
}

#[test]
fn a_full_table_evicts_transitory_entries_first_and_stays_bounded() {
    let mut table = FlowTable::new(4, Timeouts::default());
    table.insert(key(0).0, 0, State::TcpEstablished, true);
    table.insert(key(1).0, 1, State::Unreplied, true);
    table.insert(key(2).0, 2, State::Assured, true);
    table.insert(key(3).0, 3, State::Unreplied, true);
    table.insert(key(4).0, 4, State::Unreplied, true);
    // The oldest unreplied flow went, the established and assured ones stay.
    assert_eq!(table.len(), 4);
    assert!(table.get(&key(1).0, 4).is_none());
    for n in [0, 2, 3, 4] {
        assert!(table.get(&key(n).0, 4).is_some(), "{n}");
    }
    for n in 5..1000 {
        table.insert(key(n).0, 5, State::TcpEstablished, true);
        assert!(table.len() <= 4);
    }
    assert_eq!(table.evicted, 996);
    // Among established entries, the one that expires first went first.
    assert!(table.get(&key(999).0, 5).is_some());
    assert!(table.get(&key(0).0, 5).is_none());
}

#[test]
fn touching_moves_an_entry_to_the_back_of_its_list() {
    let mut table = FlowTable::new(2, Timeouts::default());
    let a = table.insert(key(1).0, 0, State::Unreplied, true);
    table.insert(key(2).0, 1, State::Unreplied, true);
    table.touch(a, 2, State::Unreplied);
    table.insert(key(3).0, 3, State::Unreplied, true);
    assert!(table.get(&key(1).0, 3).is_some());
    assert!(table.get(&key(2).0, 3).is_none());
}

#[test]
fn capacity_is_at_least_one() {
    let mut table = FlowTable::new(0, Timeouts::default());
    table.insert(key(1).0, 0, State::Unreplied, true);
    table.insert(key(2).0, 0, State::Unreplied, true);
    assert_eq!(table.len(), 1);
    assert!(table.get(&key(2).0, 0).is_some());
}
