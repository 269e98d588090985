//! Admin tokens: creation, authentication (scope, expiry, revocation, wrong secrets), listing.

use ferrowg_hub_store::{Credential, Entity, Field, HubStore, NewToken, Reason, Scope, StoreError};

use crate::support::{self, T0};

#[tokio::test]
async fn create_authenticate_list_revoke() {
    let t = support::store().await;
    let (w, wcred) = t
        .store
        .create_admin_token(Scope::Write, "init", None, T0)
        .await
        .unwrap();
    let (r, rcred) = t
        .store
        .create_admin_token(Scope::Read, "grafana", Some(T0.plus(100)), T0)
        .await
        .unwrap();
    assert_eq!(
        (w.scope, w.label.as_str(), w.expires_at),
        (Scope::Write, "init", None)
    );
    let got = t.store.authenticate_admin(&wcred, T0).await.unwrap();
    assert_eq!(got, w);
    let got = t
        .store
        .authenticate_admin(&rcred, T0.plus(99))
        .await
        .unwrap();
    assert!(got.scope.allows(Scope::Read) && !got.scope.allows(Scope::Write));
    assert!(matches!(
        t.store.authenticate_admin(&rcred, T0.plus(100)).await,
        Err(StoreError::TokenExpired)
    ));
    assert_eq!(t.store.list_admin_tokens().await.unwrap().len(), 2);
    let revoked = t.store.revoke_admin_token(&r.id, T0.plus(1)).await.unwrap();
    assert_eq!(revoked.revoked_at, Some(T0.plus(1)));
    assert!(matches!(
        t.store.authenticate_admin(&rcred, T0.plus(2)).await,
        Err(StoreError::TokenInvalid)
    ));
    assert!(matches!(
        t.store.revoke_admin_token("ffffffffffffffff", T0).await,
        Err(StoreError::NotFound(Entity::AdminToken))
    ));
}

#[tokio::test]
async fn wrong_secrets_and_other_kinds_of_token_are_invalid() {
    let t = support::store().await;
    let (w, _) = t
        .store
        .create_admin_token(Scope::Write, "", None, T0)
        .await
        .unwrap();
    let forged: Credential = format!("{}.{}", w.id, "ab".repeat(32)).parse().unwrap();
    assert!(matches!(
        t.store.authenticate_admin(&forged, T0).await,
        Err(StoreError::TokenInvalid)
    ));
    // An enrolment token's credential is not an admin credential, not even under its own id.
    let new = NewToken {
        group: "g".into(),
        uses: None,
        expires_at: None,
    };
    let (_, enrol) = t.store.create_token(&new, T0).await.unwrap();
    assert!(matches!(
        t.store.authenticate_admin(&enrol, T0).await,
        Err(StoreError::TokenInvalid)
    ));
}

#[tokio::test]
async fn bad_admin_tokens_are_refused() {
    let t = support::store().await;
    let r = t
        .store
        .create_admin_token(Scope::Read, "a\u{7}b", None, T0)
        .await;
    assert!(matches!(
        r,
        Err(StoreError::Invalid {
            field: Field::Label,
            reason: Reason::BadCharacter
        })
    ));
    let r = t
        .store
        .create_admin_token(Scope::Read, "x", Some(T0), T0)
        .await;
    assert!(matches!(
        r,
        Err(StoreError::Invalid {
            field: Field::Expiry,
            ..
        })
    ));
    assert!(t.store.list_admin_tokens().await.unwrap().is_empty());
}
