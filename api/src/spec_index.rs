//! Names the field behind poem-openapi's parse errors.
//!
//! poem-openapi refuses a bad body or path parameter before the handler runs, but its messages
//! name types (`"ProfilePatch"`) and internal parameter names (`param0`), not the field a client
//! got wrong. This index, built once from our own OpenAPI document, maps each route template to
//! its parameter names and request schema; when a request fails to parse, the body is checked
//! against that schema to find the first faulty field (`location.latitude`, `gender`, ...).
use std::collections::HashMap;

use serde_json::Value;

/// What the spec says about one operation.
struct Operation {
    /// The spec's template, `/v1/profiles/{user_id}`.
    path: String,
    /// Path parameter names in order (`param0` is the first).
    params: Vec<String>,
    /// The JSON request body schema, if any.
    body: Option<Value>,
}

/// Operations keyed by `METHOD /poem/route/:param0`.
pub struct SpecIndex {
    operations: HashMap<String, Operation>,
    schemas: Value,
}

impl SpecIndex {
    /// Builds the index from the OpenAPI document (as JSON text).
    pub fn new(spec: &str) -> Self {
        let spec: Value = serde_json::from_str(spec).unwrap_or(Value::Null);
        let mut operations = HashMap::new();
        if let Some(paths) = spec["paths"].as_object() {
            for (path, item) in paths {
                let (route, params) = poem_route(path);
                for (method, op) in item.as_object().into_iter().flatten() {
                    let body = op["requestBody"]["content"]
                        .as_object()
                        .and_then(|c| c.iter().find(|(k, _)| k.starts_with("application/json")))
                        .map(|(_, media)| media["schema"].clone());
                    operations.insert(
                        format!("{} {route}", method.to_uppercase()),
                        Operation {
                            path: path.clone(),
                            params: params.clone(),
                            body,
                        },
                    );
                }
            }
        }
        Self {
            operations,
            schemas: spec["components"]["schemas"].clone(),
        }
    }

    /// The name of poem-openapi's internal path parameter (`param0`) on a route.
    pub fn param_name(&self, method: &str, route: &str, internal: &str) -> Option<String> {
        let index: usize = internal.strip_prefix("param")?.parse().ok()?;
        self.operations
            .get(&format!("{method} {route}"))?
            .params
            .get(index)
            .cloned()
    }

    /// The spec's path template for a poem route (`/v1/profiles/{user_id}`).
    pub fn spec_path(&self, method: &str, route: &str) -> Option<String> {
        self.operations
            .get(&format!("{method} {route}"))
            .map(|op| op.path.clone())
    }

    /// The first field of `body` that does not fit the operation's schema, with the reason.
    pub fn diagnose(&self, method: &str, route: &str, body: &Value) -> Option<(String, String)> {
        let schema = self
            .operations
            .get(&format!("{method} {route}"))?
            .body
            .as_ref()?;
        self.check(schema, body, "")
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        let mut current = schema;
        for _ in 0..8 {
            if let Some(reference) = current["$ref"].as_str() {
                current = &self.schemas[reference.trim_start_matches("#/components/schemas/")];
            } else if let Some(part) = current["allOf"].as_array().and_then(|parts| {
                parts
                    .iter()
                    .find(|p| p.get("$ref").is_some() || p.get("type").is_some())
            }) {
                // poem-openapi wraps a described reference as `allOf: [{$ref}, {description}]`.
                current = part;
            } else {
                break;
            }
        }
        current
    }

    fn check(&self, schema: &Value, value: &Value, path: &str) -> Option<(String, String)> {
        let schema = self.resolve(schema);
        let here = |reason: String| {
            Some((
                if path.is_empty() {
                    "body".to_owned()
                } else {
                    path.to_owned()
                },
                reason,
            ))
        };
        if value.is_null() {
            return None; // Required-ness is checked by the parent object.
        }
        if let Some(choices) = schema["enum"].as_array() {
            if !choices.contains(value) {
                let names: Vec<String> = choices
                    .iter()
                    .filter_map(|c| c.as_str().map(str::to_owned))
                    .collect();
                return here(format!("must be one of: {}", names.join(", ")));
            }
            return None;
        }
        match schema["type"].as_str() {
            Some("object") => {
                let Some(object) = value.as_object() else {
                    return here("must be an object".into());
                };
                let properties = schema["properties"].as_object();
                for required in schema["required"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                {
                    if object.get(required).is_none_or(Value::is_null) {
                        return Some((join(path, required), "is required".into()));
                    }
                }
                for (key, inner) in object {
                    match properties.and_then(|p| p.get(key)) {
                        Some(property) => {
                            if let Some(found) = self.check(property, inner, &join(path, key)) {
                                return Some(found);
                            }
                        }
                        None if schema["additionalProperties"] == Value::Bool(false) => {
                            return Some((join(path, key), "is not a known field".into()))
                        }
                        None => {}
                    }
                }
                None
            }
            Some("array") => {
                let Some(items) = value.as_array() else {
                    return here("must be an array".into());
                };
                items.iter().enumerate().find_map(|(i, item)| {
                    self.check(&schema["items"], item, &format!("{path}[{i}]"))
                })
            }
            Some("string") => {
                let Some(text) = value.as_str() else {
                    return here("must be a string".into());
                };
                let ok = match schema["format"].as_str() {
                    Some("date") => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").is_ok(),
                    Some("date-time") => chrono::DateTime::parse_from_rfc3339(text).is_ok(),
                    Some("uuid") => uuid::Uuid::parse_str(text).is_ok(),
                    _ => true,
                };
                if ok {
                    None
                } else {
                    let expected = match schema["format"].as_str() {
                        Some("date") => "a date (YYYY-MM-DD)",
                        Some("date-time") => "an RFC 3339 time",
                        _ => "a UUID",
                    };
                    here(format!("must be {expected}"))
                }
            }
            Some("integer") if !(value.is_i64() || value.is_u64()) => {
                here("must be an integer".into())
            }
            Some("number") if !value.is_number() => here("must be a number".into()),
            Some("boolean") if !value.is_boolean() => here("must be true or false".into()),
            _ => None,
        }
    }
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// `/v1/profiles/{user_id}` becomes `/v1/profiles/:param0` (how poem-openapi registers routes),
/// with `["user_id"]`.
fn poem_route(path: &str) -> (String, Vec<String>) {
    let mut params = Vec::new();
    let route = path
        .split('/')
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => {
                    params.push(name.to_owned());
                    format!(":param{}", params.len() - 1)
                }
                None => segment.to_owned(),
            },
        )
        .collect::<Vec<_>>()
        .join("/");
    (route, params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn index() -> SpecIndex {
        SpecIndex::new(&crate::openapi::spec_json().expect("spec"))
    }

    #[test]
    fn path_parameters_get_their_names_back() {
        assert_eq!(
            index()
                .param_name("GET", "/v1/profiles/:param0", "param0")
                .as_deref(),
            Some("user_id")
        );
    }

    #[test]
    fn body_problems_name_the_field() {
        let idx = index();
        let d = |body: Value| {
            idx.diagnose("PATCH", "/v1/me/profile", &body)
                .map(|(f, _)| f)
        };
        assert_eq!(d(json!({"gender": "dragon"})).as_deref(), Some("gender"));
        assert_eq!(
            d(json!({"birthdate": "17/05/1994"})).as_deref(),
            Some("birthdate")
        );
        assert_eq!(
            d(json!({"location": {"latitude": "north", "longitude": 2}})).as_deref(),
            Some("location.latitude")
        );
        assert_eq!(
            d(json!({"location": {"latitude": 1}})).as_deref(),
            Some("location.longitude")
        );
        assert_eq!(
            d(json!({"intentions": ["long_term", 3]})).as_deref(),
            Some("intentions[1]")
        );
        assert_eq!(d(json!({"display_name": "Ana"})), None);
        let login = idx.diagnose("POST", "/v1/auth/login", &json!({"email": "a@b.c"}));
        assert_eq!(login, Some(("password".into(), "is required".into())));
    }
}
