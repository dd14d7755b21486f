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
