//! The committed OpenAPI document (`crates/ferrowg-hub/openapi.json`) is the one the handlers
//! generate. After changing the API, regenerate it with
//! `FERROWG_UPDATE_OPENAPI=1 cargo test -p ferrowg-hub --test openapi`.

use std::path::Path;

#[test]
fn committed_openapi_document_is_current() {
    let generated = ferrowg_hub::api::openapi_json(&ferrowg_hub::api::openapi());
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    if std::env::var_os("FERROWG_UPDATE_OPENAPI").is_some_and(|v| v == "1") {
        std::fs::write(&path, &generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} differs from the document the handlers generate; regenerate it with \
         FERROWG_UPDATE_OPENAPI=1 cargo test -p ferrowg-hub --test openapi and commit it",
        path.display()
    );
}

#[test]
fn document_names_every_endpoint_and_problem() {
    let doc: serde_json::Value =
        serde_json::from_str(&ferrowg_hub::api::openapi_json(&ferrowg_hub::api::openapi()))
            .unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/enroll",
        "/api/v1/devices",
        "/api/v1/devices/{name}",
        "/api/v1/devices/{name}/revoke",
        "/api/v1/devices/{name}/routes",
        "/api/v1/tokens",
        "/api/v1/tokens/{id}",
        "/api/v1/policy",
        "/api/v1/policy/check",
        "/api/v1/devices/{name}/rotate",
        "/api/v1/nodes",
        "/api/v1/groups",
    ] {
        assert!(paths.contains_key(p), "{p} missing");
    }
    let list = &doc["paths"]["/api/v1/devices"]["get"];
    assert!(
        list["responses"]["200"]["headers"]["X-Total-Count"].is_object(),
        "the total header is documented"
    );
    let params: Vec<&str> = list["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        params,
        ["q", "group", "status", "sort", "order", "limit", "offset"]
    );
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    assert!(doc["components"]["securitySchemes"]["admin"].is_object());
}
