//! The groups' summary: every group a device or a token names, its devices counted by status
//! and its usable enrolment tokens.

use ferrowg_hub_store::{Enrolment, GroupSummary, HubStore, NewDevice, NewToken, UnixTime};

use crate::support::{self, key, T0};

/// The summary is taken at this time; online means a handshake at most 180 s before it.
const NOW: UnixTime = UnixTime(T0.0 + 10_000);
const WITHIN: i64 = 180;

fn group(name: &str, counts: [u64; 5]) -> GroupSummary {
    let [devices, online, pending, revoked, tokens] = counts;
    GroupSummary {
        name: name.into(),
        devices,
        online,
        pending,
        revoked,
        tokens,
    }
}

fn token(group: &str, uses: Option<u32>, expires_at: Option<UnixTime>) -> NewToken {
    NewToken {
        group: group.into(),
        uses,
        expires_at,
    }
}

#[tokio::test]
async fn an_empty_store_has_no_groups() {
    let t = support::store().await;
    assert!(t.store.group_summary(NOW, WITHIN).await.unwrap().is_empty());
}

/// - `ops`: alpha online (handshake exactly WITHIN ago), bravo offline (one second older),
///   echo pending; an unlimited token and one with 2 uses left
/// - `lab`: charlie revoked after a fresh handshake, delta pending; tokens revoked, expired
///   at NOW exactly, and used up (its one use enrolled `spent` into `lab`)
/// - `tok-only`: no device, one usable token expiring after NOW
/// - `gone`: only a revoked device
#[tokio::test]
async fn devices_are_counted_by_status_and_tokens_only_while_usable() {
    let t = support::store().await;
    let s = &t.store;
    let devices = [
        ("alpha", "ops"),
        ("bravo", "ops"),
        ("echo", "ops"),
        ("charlie", "lab"),
        ("delta", "lab"),
        ("zulu", "gone"),
    ];
    for (i, (name, group)) in (1..).zip(devices) {
        let new = NewDevice {
            name: name.into(),
            group: group.into(),
            public_key: key(i),
            routes: vec![],
        };
        s.add_device(&new, T0).await.unwrap();
    }
    let shakes = [(1, NOW.0 - WITHIN), (2, NOW.0 - WITHIN - 1), (4, NOW.0 - 1)];
    for (i, at) in shakes {
        s.record_handshake(&key(i), UnixTime(at), None)
            .await
            .unwrap();
    }
    s.revoke_device("charlie", NOW).await.unwrap();
    s.revoke_device("zulu", NOW).await.unwrap();

    s.create_token(&token("ops", None, None), T0).await.unwrap();
    s.create_token(&token("ops", Some(2), Some(NOW.plus(1))), T0)
        .await
        .unwrap();
    let (revoked, _) = s.create_token(&token("lab", None, None), T0).await.unwrap();
    s.revoke_token(&revoked.id, T0.plus(1)).await.unwrap();
    s.create_token(&token("lab", None, Some(NOW)), T0)
        .await
        .unwrap();
    let (_, cred) = s
        .create_token(&token("lab", Some(1), None), T0)
        .await
        .unwrap();
    let spent = Enrolment {
        name: "spent".into(),
        public_key: key(99),
        routes: vec![],
    };
    s.redeem(&cred, &spent, T0.plus(2)).await.unwrap();
    s.create_token(&token("tok-only", Some(5), Some(NOW.plus(60))), T0)
        .await
        .unwrap();

    assert_eq!(
        s.group_summary(NOW, WITHIN).await.unwrap(),
        [
            group("gone", [0, 0, 0, 1, 0]),
            // delta and spent pending, charlie revoked (its fresh handshake does not count).
            group("lab", [2, 0, 2, 1, 0]),
            group("ops", [3, 1, 1, 0, 2]),
            group("tok-only", [0, 0, 0, 0, 1]),
        ]
    );
    // A minute later alpha's handshake is too old and the second ops token has expired.
    let later = s.group_summary(NOW.plus(60), WITHIN).await.unwrap();
    assert_eq!(later[2], group("ops", [3, 0, 1, 0, 1]));
    assert_eq!(later[3], group("tok-only", [0, 0, 0, 0, 0]));
}
