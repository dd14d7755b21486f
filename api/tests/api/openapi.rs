//! The committed spec is the generated one, and it documents what SDK users need.
use serde_json::Value;

fn committed_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../openapi/openapi.json")
}

#[test]
fn the_committed_spec_matches_the_code() {
    let generated = api::openapi::spec_json().expect("spec");
    if std::env::var("UPDATE_OPENAPI").is_ok() {
        std::fs::write(committed_path(), &generated).expect("write spec");
    }
    let committed = std::fs::read_to_string(committed_path()).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: run `cargo run -p api --bin despacio-api -- openapi > openapi/openapi.json` \
         (or this test with UPDATE_OPENAPI=1) and commit it"
    );
}

#[test]
fn every_operation_has_a_summary_a_tag_an_id_and_its_errors() {
    let spec: Value =
        serde_json::from_str(&api::openapi::spec_json().expect("spec")).expect("json");
    let schemas = &spec["components"]["schemas"];
    let mut count = 0;
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            count += 1;
            let name = format!("{method} {path}");
            assert!(
                op["summary"].as_str().is_some_and(|s| !s.is_empty()),
                "{name}: summary"
            );
            assert!(
                op["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{name}: tag"
            );
            assert!(op["operationId"].is_string(), "{name}: operationId");
            let responses = op["responses"].as_object().expect("responses");
            assert!(
                responses.contains_key("500")
                    || path.starts_with("/healthz")
                    || path.starts_with("/readyz")
                    || path.starts_with("/metrics")
                    || path.starts_with("/.well-known"),
                "{name}: 500"
            );
            if op.get("security").is_some() {
                let unauthorized = &responses
                    .get("401")
                    .unwrap_or_else(|| panic!("{name}: 401"))["content"]
                    ["application/problem+json"];
                assert!(unauthorized.is_object(), "{name}: 401 is problem+json");
            }
            if let Some(form) = op
                .get("requestBody")
                .and_then(|b| b["content"].get("multipart/form-data"))
            {
                // Uploads: a documented binary `file` field, and the upload problems.
                assert_eq!(
                    form["schema"]["properties"]["file"]["format"], "binary",
                    "{name}: file field"
                );
                for status in ["400", "413", "415", "422"] {
                    assert!(responses.contains_key(status), "{name}: {status}");
                }
            } else if let Some(body) = op.get("requestBody") {
                let reference = body["content"]["application/json; charset=utf-8"]["schema"]
                    ["$ref"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name}: JSON body schema"));
                let schema = &schemas[reference.trim_start_matches("#/components/schemas/")];
                assert!(schema.get("example").is_some(), "{name}: request example");
                assert!(
                    responses.contains_key("400") && responses.contains_key("422"),
                    "{name}: 400/422"
                );
            }
        }
    }
    assert!(count >= 20, "{count} operations");
}

/// Every HTTP operation `../shared/API.md` names (the public contract), as `METHOD path`.
/// (`GET /openapi.json` and `/docs` serve the document itself: see the ops tests.)
const CONTRACT: &[&str] = &[
    "GET /healthz",
    "GET /readyz",
    "GET /metrics",
    "GET /.well-known/jwks.json",
    "POST /v1/auth/register",
    "POST /v1/auth/login",
    "POST /v1/auth/magic-link",
    "POST /v1/auth/magic-link/verify",
    "POST /v1/auth/refresh",
    "POST /v1/auth/logout",
    "GET /v1/auth/sessions",
    "DELETE /v1/auth/sessions/{id}",
    "POST /v1/auth/reauthenticate",
    "GET /v1/me",
    "PATCH /v1/me/profile",
    "GET /v1/me/preferences",
    "PUT /v1/me/preferences",
    "GET /v1/me/settings",
    "PATCH /v1/me/settings",
    "GET /v1/me/export",
    "DELETE /v1/me",
    "POST /v1/me/photos",
    "GET /v1/me/photos",
    "DELETE /v1/me/photos/{id}",
    "PUT /v1/me/photos/order",
    "GET /v1/photos/{id}/{variant}",
    "GET /v1/profiles/{user_id}",
    "GET /v1/discovery",
    "GET /v1/likes/received",
    "POST /v1/swipes",
    "GET /v1/resonances",
    "DELETE /v1/resonances/{id}",
    "GET /v1/resonances/{id}/messages",
    "POST /v1/blocks",
    "GET /v1/blocks",
    "DELETE /v1/blocks/{user_id}",
    "POST /v1/reports",
    "GET /v1/events",
    "GET /v1/admin/reports",
    "GET /v1/admin/reports/{id}",
    "PATCH /v1/admin/reports/{id}",
    "POST /v1/admin/users/{id}/actions",
    "GET /v1/admin/users/{id}",
    "GET /v1/admin/audit",
    "GET /v1/admin/analytics/{metric}",
    "GET /v1/admin/logs/stream",
];

/// Not built yet (README, "What is not done yet").
const NOT_YET: &[&str] = &[];

#[test]
fn every_operation_of_the_contract_is_in_the_spec() {
    let spec: Value =
        serde_json::from_str(&api::openapi::spec_json().expect("spec")).expect("json");
    let mut documented: Vec<String> = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            documented.push(format!("{} {path}", method.to_uppercase()));
        }
    }
    let missing: Vec<&&str> = CONTRACT
        .iter()
        .filter(|op| !documented.iter().any(|d| d == **op))
        .collect();
    assert!(missing.is_empty(), "missing from the spec: {missing:?}");
    for op in NOT_YET {
        assert!(
            !documented.iter().any(|d| d == op),
            "{op} is built: move it"
        );
    }
    // API.md: every admin operation says the least role that may call it, first.
    for (path, item) in spec["paths"].as_object().expect("paths") {
        if !path.starts_with("/v1/admin") {
            continue;
        }
        for (method, op) in item.as_object().expect("item") {
            let description = op["description"].as_str().unwrap_or_default();
            assert!(
                description.starts_with("Role: moderator.")
                    || description.starts_with("Role: admin."),
                "{method} {path}: {description}"
            );
        }
    }
}
