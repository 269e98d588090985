//! Enrolment tokens: creation, listing, revocation, and redemption with every way it can fail,
//! each failure leaving the token's uses and the devices as they were.

use ferrowg_hub_store::{
    Conflict, Credential, DeviceState, Enrolment, Entity, Field, HubStore, NewToken, Reason,
    StoreError,
};

use crate::support::{self, key, T0};

fn token(uses: Option<u32>, expires_in: Option<i64>) -> NewToken {
    NewToken {
        group: "sensors".into(),
        uses,
        expires_at: expires_in.map(|s| T0.plus(s)),
    }
}

fn enrolment(name: &str, i: u32) -> Enrolment {
    Enrolment {
        name: name.into(),
        public_key: key(i),
        routes: vec![],
    }
}

#[tokio::test]
async fn create_get_list_revoke() {
    let t = support::store().await;
    let (tok, cred) = t
        .store
        .create_token(&token(Some(3), Some(3600)), T0)
        .await
        .unwrap();
    assert_eq!(tok.id, cred.id());
    assert_eq!(tok.group, "sensors");
    assert_eq!(tok.uses_left, Some(3));
    assert_eq!(tok.expires_at, Some(T0.plus(3600)));
    assert_eq!(tok.created_at, T0);
    assert_eq!(t.store.token(&tok.id).await.unwrap(), tok);
    let (tok2, _) = t.store.create_token(&token(None, None), T0).await.unwrap();
    let ids: Vec<String> = t
        .store
        .list_tokens()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&tok.id) && ids.contains(&tok2.id));
    let revoked = t.store.revoke_token(&tok.id, T0.plus(5)).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(T0.plus(5)));
    let seq = t.store.event_seq().await.unwrap();
    let again = t.store.revoke_token(&tok.id, T0.plus(9)).await.unwrap();
    assert_eq!(
        again.revoked_at,
        Some(T0.plus(5)),
        "revoking twice changes nothing"
    );
    assert_eq!(t.store.event_seq().await.unwrap(), seq);
}

#[tokio::test]
async fn bad_tokens_are_refused_at_creation() {
    let t = support::store().await;
    let invalid = |r: Result<_, StoreError>| match r {
        Err(StoreError::Invalid { field, reason }) => (field, reason),
        other => panic!("unexpected {other:?}"),
    };
    let zero = t.store.create_token(&token(Some(0), None), T0).await;
    assert_eq!(invalid(zero), (Field::Uses, Reason::OutOfRange));
    let past = t.store.create_token(&token(None, Some(0)), T0).await;
    assert_eq!(invalid(past), (Field::Expiry, Reason::OutOfRange));
    let mut bad_group = token(None, None);
    bad_group.group = "Sensors!".into();
    let r = t.store.create_token(&bad_group, T0).await;
    assert_eq!(invalid(r), (Field::Group, Reason::BadCharacter));
    assert!(t.store.list_tokens().await.unwrap().is_empty());
}

#[tokio::test]
async fn unknown_and_malformed_token_ids() {
    let t = support::store().await;
    assert!(matches!(
        t.store.token("0123456789abcdef").await,
        Err(StoreError::NotFound(Entity::EnrolmentToken))
    ));
    assert!(matches!(
        t.store.revoke_token("0123456789abcdef", T0).await,
        Err(StoreError::NotFound(Entity::EnrolmentToken))
    ));
    assert!(matches!(
        t.store.token("x' OR 1=1 --").await,
        Err(StoreError::Invalid {
            field: Field::TokenId,
            ..
        })
    ));
}

#[tokio::test]
async fn redeem_creates_a_pending_device_and_takes_one_use() {
    let t = support::store().await;
    let (tok, cred) = t
        .store
        .create_token(&token(Some(2), Some(60)), T0)
        .await
        .unwrap();
    let d = t
        .store
        .redeem(&cred, &enrolment("gw-1", 1), T0)
        .await
        .unwrap();
    assert_eq!(d.name, "gw-1");
    assert_eq!(d.group, "sensors", "the group comes from the token");
    assert_eq!(d.state, DeviceState::Pending);
    assert_eq!(d.token_id.as_deref(), Some(tok.id.as_str()));
    assert_eq!(d.ipv4.to_string(), "10.64.0.2");
    assert_eq!(d.ipv6.unwrap().to_string(), "fd64::2");
    assert_eq!(t.store.token(&tok.id).await.unwrap().uses_left, Some(1));
    t.store
        .redeem(&cred, &enrolment("gw-2", 2), T0)
        .await
        .unwrap();
    assert_eq!(t.store.token(&tok.id).await.unwrap().uses_left, Some(0));
    let third = t.store.redeem(&cred, &enrolment("gw-3", 3), T0).await;
    assert!(matches!(third, Err(StoreError::TokenExhausted)));
    assert_eq!(t.store.list_devices().await.unwrap().len(), 2);
}

#[tokio::test]
async fn unlimited_token_keeps_working() {
    let t = support::store().await;
    let (tok, cred) = t.store.create_token(&token(None, None), T0).await.unwrap();
    for i in 0..5 {
        let name = format!("d{i}");
        t.store
            .redeem(&cred, &enrolment(&name, i), T0)
            .await
            .unwrap();
    }
    assert_eq!(t.store.token(&tok.id).await.unwrap().uses_left, None);
}

#[tokio::test]
async fn expired_revoked_and_wrong_secrets_fail_without_effect() {
    let t = support::store().await;
    let (tok, cred) = t
        .store
        .create_token(&token(Some(5), Some(60)), T0)
        .await
        .unwrap();
    let seq = t.store.event_seq().await.unwrap();
    let expired = t.store.redeem(&cred, &enrolment("a", 1), T0.plus(60)).await;
    assert!(matches!(expired, Err(StoreError::TokenExpired)));
    // Same identifier, other secret.
    let forged: Credential = format!("{}.{}", tok.id, "00".repeat(32)).parse().unwrap();
    let wrong = t.store.redeem(&forged, &enrolment("a", 1), T0).await;
    assert!(matches!(wrong, Err(StoreError::TokenInvalid)));
    let unknown: Credential = format!("{}.{}", "ab".repeat(8), "11".repeat(32))
        .parse()
        .unwrap();
    let r = t.store.redeem(&unknown, &enrolment("a", 1), T0).await;
    assert!(matches!(r, Err(StoreError::TokenInvalid)));
    assert_eq!(t.store.token(&tok.id).await.unwrap().uses_left, Some(5));
    assert_eq!(
        t.store.event_seq().await.unwrap(),
        seq,
        "failures change nothing"
    );

    let d = t.store.redeem(&cred, &enrolment("a", 1), T0).await.unwrap();
    t.store.revoke_token(&tok.id, T0).await.unwrap();
    let revoked = t.store.redeem(&cred, &enrolment("b", 2), T0).await;
    assert!(matches!(revoked, Err(StoreError::TokenInvalid)));
    let still = t.store.device("a").await.unwrap();
    assert_eq!(still, d, "revoking a token leaves its devices alone");
}

#[tokio::test]
async fn a_failed_device_insert_does_not_take_a_use() {
    let t = support::store().await;
    let (tok, cred) = t
        .store
        .create_token(&token(Some(2), None), T0)
        .await
        .unwrap();
    t.store.redeem(&cred, &enrolment("a", 1), T0).await.unwrap();
    let same_name = t.store.redeem(&cred, &enrolment("a", 2), T0).await;
    assert!(matches!(
        same_name,
        Err(StoreError::Conflict(Conflict::DeviceName))
    ));
    let same_key = t.store.redeem(&cred, &enrolment("b", 1), T0).await;
    assert!(matches!(
        same_key,
        Err(StoreError::Conflict(Conflict::PublicKey))
    ));
    let bad_name = t.store.redeem(&cred, &enrolment("B_1", 3), T0).await;
    assert!(matches!(
        bad_name,
        Err(StoreError::Invalid {
            field: Field::DeviceName,
            ..
        })
    ));
    assert_eq!(t.store.token(&tok.id).await.unwrap().uses_left, Some(1));
    assert_eq!(t.store.list_devices().await.unwrap().len(), 1);
}
