//! Conformance checks of requests and responses against GitHub's own REST API description.
//!
//! The description is `tests/fixtures/github/api.github.com.subset.json` (see the fixtures
//! README for its provenance). The validator covers the OpenAPI 3.0 schema subset that file uses:
//! `$ref` (to `#/components/...`), `type` with `nullable`, `properties`, `required`,
//! `additionalProperties` (bool or schema), `items`, `enum`, `oneOf`/`anyOf`/`allOf`,
//! `minimum`/`maximum` (with the 3.0 boolean `exclusiveMinimum`/`exclusiveMaximum`),
//! `minLength`/`maxLength` and `minItems`/`maxItems`. `format`, `pattern`, `discriminator`,
//! `example(s)`, `readOnly` and `writeOnly` are ignored.
//!
//! Two deliberate readings of the 3.0 rules, both forced by the upstream description:
//! - `nullable: true` admits `null` whatever the schema's `enum` says (upstream's `check-run`
//!   example has `"conclusion": null` against a nullable enum that does not list `null`).
//! - `oneOf` passes when at least one alternative matches. Upstream's alternatives overlap:
//!   the 409 of `PUT /contents/{path}` is `oneOf [basic-error, repository-rule-violation-error]`,
//!   and every object with only `message`/`documentation_url`/`status` matches both, so the
//!   strict "exactly one" rule would reject every conflict GitHub really sends.
//!
//! Every error message starts with the JSON pointer of the failing value (`(root)` for the
//! value itself).

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::OnceLock;

use serde_json::{Map, Value};

/// The GitHub REST API description, with its operations indexed by method and path template.
pub struct OpenApi {
    doc: Value,
    operations: Vec<Operation>,
}

/// One operation of the description (`method` + path template).
struct Operation {
    method: String,
    template: String,
    segments: Vec<Segment>,
    /// Path-item and operation parameters, `$ref`s resolved.
    parameters: Vec<Value>,
    /// The operation's `requestBody`, `$ref` resolved.
    request_body: Option<Value>,
    /// Status (or `default`, `2XX`) → response object, `$ref`s resolved.
    responses: Map<String, Value>,
    documentation_url: Option<String>,
}

enum Segment {
    Literal(String),
    /// A path parameter; `multi` when it may span several segments (`x-multi-segment`).
    Param {
        name: String,
        multi: bool,
    },
}

/// The operation a request matched, with its path parameters.
struct Matched<'a> {
    operation: &'a Operation,
    path_params: Vec<(String, String)>,
}

const MAX_REF_DEPTH: usize = 64;

impl OpenApi {
    /// Loads the GitHub subset from `tests/fixtures/github/api.github.com.subset.json`.
    pub fn load() -> OpenApi {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github/api.github.com.subset.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
        OpenApi::from_document(doc)
    }

    /// The GitHub subset, loaded once per test process.
    pub fn github() -> &'static OpenApi {
        static API: OnceLock<OpenApi> = OnceLock::new();
        API.get_or_init(OpenApi::load)
    }

    /// Indexes an OpenAPI 3.0 document. Panics on shapes this checker does not support.
    pub fn from_document(doc: Value) -> OpenApi {
        let mut operations = Vec::new();
        let paths = doc["paths"].as_object().expect("an OpenAPI document has `paths`");
        for (template, item) in paths {
            let item = item.as_object().expect("a path item is an object");
            let shared: Vec<Value> = item
                .get("parameters")
                .and_then(Value::as_array)
                .map(|ps| ps.iter().map(|p| resolve_in(&doc, p).clone()).collect())
                .unwrap_or_default();
            for (method, op) in item {
                if !["get", "put", "post", "delete", "options", "head", "patch", "trace"].contains(&method.as_str()) {
                    continue;
                }
                let mut parameters = shared.clone();
                for p in op.get("parameters").and_then(Value::as_array).into_iter().flatten() {
                    let p = resolve_in(&doc, p).clone();
                    parameters.retain(|q| !(q["name"] == p["name"] && q["in"] == p["in"]));
                    parameters.push(p);
                }
                let segments = template
                    .trim_start_matches('/')
                    .split('/')
                    .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                        Some(name) => {
                            let multi = parameters.iter().any(|p| {
                                p["in"] == "path" && p["name"] == name && p["x-multi-segment"] == Value::Bool(true)
                            });
                            Segment::Param {
                                name: name.to_string(),
                                multi,
                            }
                        }
                        None => {
                            assert!(
                                !s.contains('{'),
                                "unsupported path template segment {s:?} in {template}"
                            );
                            Segment::Literal(s.to_string())
                        }
                    })
                    .collect();
                let responses = op["responses"]
                    .as_object()
                    .map(|rs| {
                        rs.iter()
                            .map(|(status, r)| (status.clone(), resolve_in(&doc, r).clone()))
                            .collect()
                    })
                    .unwrap_or_default();
                operations.push(Operation {
                    method: method.to_ascii_uppercase(),
                    template: template.clone(),
                    segments,
                    parameters,
                    request_body: op.get("requestBody").map(|b| resolve_in(&doc, b).clone()),
                    responses,
                    documentation_url: op["externalDocs"]["url"].as_str().map(str::to_string),
                });
            }
        }
        OpenApi { doc, operations }
    }

    /// Checks one request: the method and path name an operation, every query parameter is
    /// declared by it (and has the declared type), required ones are present, and the JSON body
    /// validates against the operation's request-body schema. Returns the violations.
    ///
    /// `path` is the decoded path without the query, such as
    /// `/repos/o/r/contents/.github/rollouts/a.yml`.
    pub fn check_request(
        &self,
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: Option<&Value>,
    ) -> Vec<String> {
        let at = format!("{} {path}", method.to_ascii_uppercase());
        let matched = match self.find(method, path) {
            Ok(m) => m,
            Err(e) => return vec![format!("{at}: {e}")],
        };
        let op = matched.operation;
        let mut errors = Vec::new();
        for (name, raw) in &matched.path_params {
            if let Some(p) = op
                .parameters
                .iter()
                .find(|p| p["in"] == "path" && p["name"] == name.as_str())
            {
                self.check_parameter_value(p, raw, &format!("path parameter `{name}`"), &mut errors);
            }
        }
        let mut seen = BTreeSet::new();
        for (name, raw) in query {
            seen.insert(name.as_str());
            match op
                .parameters
                .iter()
                .find(|p| p["in"] == "query" && p["name"] == name.as_str())
            {
                Some(p) => self.check_parameter_value(p, raw, &format!("query parameter `{name}`"), &mut errors),
                None => errors.push(format!(
                    "query parameter `{name}` is not declared by {} {} (declared: {})",
                    op.method,
                    op.template,
                    declared_names(op, "query")
                )),
            }
        }
        for p in op
            .parameters
            .iter()
            .filter(|p| p["in"] == "query" && p["required"] == true)
        {
            let name = p["name"].as_str().unwrap_or_default();
            if !seen.contains(name) {
                errors.push(format!("required query parameter `{name}` is missing"));
            }
        }
        match (&op.request_body, body) {
            (None, Some(_)) => errors.push(format!("{} {} takes no request body, got one", op.method, op.template)),
            (Some(rb), None) if rb["required"] == true => errors.push("the request body is required".to_string()),
            (Some(rb), Some(body)) => match media_schema(rb) {
                Some(schema) => {
                    for e in self.validate(schema, body) {
                        errors.push(format!("request body {e}"));
                    }
                }
                None => errors.push("the request body has no JSON schema to validate against".to_string()),
            },
            _ => {}
        }
        errors.into_iter().map(|e| format!("{at}: {e}")).collect()
    }

    /// Checks one response: `status` is documented for the operation and the JSON `body` (if
    /// any) validates against the documented schema. Returns the violations.
    pub fn check_response(&self, method: &str, path: &str, status: u16, body: Option<&Value>) -> Vec<String> {
        let at = format!("{} {path} -> {status}", method.to_ascii_uppercase());
        let matched = match self.find(method, path) {
            Ok(m) => m,
            Err(e) => return vec![format!("{at}: {e}")],
        };
        let op = matched.operation;
        let code = status.to_string();
        let range = format!("{}XX", status / 100);
        let response = op
            .responses
            .get(&code)
            .or_else(|| op.responses.get(&range))
            .or_else(|| op.responses.get("default"));
        let Some(response) = response else {
            let documented: Vec<&str> = op.responses.keys().map(String::as_str).collect();
            return vec![format!(
                "{at}: status {status} is not documented for {} {} (documented: {})",
                op.method,
                op.template,
                documented.join(", ")
            )];
        };
        let Some(body) = body else { return Vec::new() };
        match media_schema(response) {
            Some(schema) => self
                .validate(schema, body)
                .into_iter()
                .map(|e| format!("{at}: body {e}"))
                .collect(),
            None => vec![format!(
                "{at}: the documented response has no body, got {}",
                short(body)
            )],
        }
    }

    /// Validates `value` against `schema` (a schema object, or `{"$ref": "#/components/..."}`).
    /// Returns one message per failure, each starting with the failing value's JSON pointer.
    pub fn validate(&self, schema: &Value, value: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.validate_at(schema, value, "", 0, &mut errors);
        errors
    }

    /// Validates `value` against the component schema `name` (`#/components/schemas/<name>`).
    pub fn validate_component(&self, name: &str, value: &Value) -> Vec<String> {
        self.validate(
            &serde_json::json!({ "$ref": format!("#/components/schemas/{name}") }),
            value,
        )
    }

    /// The `value` of `#/components/examples/<name>`, if the description has that example.
    pub fn example(&self, name: &str) -> Option<Value> {
        self.doc["components"]["examples"].get(name).map(|e| e["value"].clone())
    }

    /// The operation's documentation URL (`externalDocs.url`), as GitHub puts it in error bodies.
    pub fn documentation_url(&self, method: &str, path: &str) -> Option<String> {
        self.find(method, path)
            .ok()
            .and_then(|m| m.operation.documentation_url.clone())
    }

    /// The path template of the operation `method path` matches, such as
    /// `/repos/{owner}/{repo}/contents/{path}`.
    pub fn operation_template(&self, method: &str, path: &str) -> Option<String> {
        self.find(method, path).ok().map(|m| m.operation.template.clone())
    }

    /// The raw description.
    pub fn document(&self) -> &Value {
        &self.doc
    }

    fn find(&self, method: &str, path: &str) -> Result<Matched<'_>, String> {
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut candidates: Vec<(usize, Matched<'_>)> = Vec::new();
        for operation in &self.operations {
            let mut path_params = Vec::new();
            if match_segments(&operation.segments, &parts, &mut path_params) {
                let literals = operation
                    .segments
                    .iter()
                    .filter(|s| matches!(s, Segment::Literal(_)))
                    .count();
                candidates.push((literals, Matched { operation, path_params }));
            }
        }
        if candidates.is_empty() {
            return Err("no operation in the API description has this path".to_string());
        }
        let method = method.to_ascii_uppercase();
        let others: BTreeSet<String> = candidates
            .iter()
            .map(|(_, m)| format!("{} {}", m.operation.method, m.operation.template))
            .collect();
        // The most specific template (most literal segments) wins among those with this method.
        candidates
            .into_iter()
            .filter(|(_, m)| m.operation.method == method)
            .max_by_key(|(literals, _)| *literals)
            .map(|(_, m)| m)
            .ok_or_else(|| {
                format!(
                    "no {method} operation for this path (the description has: {})",
                    others.into_iter().collect::<Vec<_>>().join(", ")
                )
            })
    }

    fn check_parameter_value(&self, parameter: &Value, raw: &str, what: &str, errors: &mut Vec<String>) {
        let Some(schema) = parameter.get("schema") else { return };
        let schema = self.resolve(schema);
        let value = match schema["type"].as_str() {
            Some("integer") => match raw.parse::<i64>() {
                Ok(n) => Value::from(n),
                Err(_) => {
                    errors.push(format!("{what}: {raw:?} is not an integer"));
                    return;
                }
            },
            Some("number") => match raw.parse::<f64>() {
                Ok(n) => Value::from(n),
                Err(_) => {
                    errors.push(format!("{what}: {raw:?} is not a number"));
                    return;
                }
            },
            Some("boolean") => match raw {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => {
                    errors.push(format!("{what}: {raw:?} is not a boolean"));
                    return;
                }
            },
            Some("array") | Some("object") => return,
            _ => Value::String(raw.to_string()),
        };
        for e in self.validate(schema, &value) {
            errors.push(format!("{what}: {e}"));
        }
    }

    fn resolve<'a>(&'a self, schema: &'a Value) -> &'a Value {
        resolve_in(&self.doc, schema)
    }

    fn validate_at(&self, schema: &Value, value: &Value, pointer: &str, depth: usize, errors: &mut Vec<String>) {
        if depth > MAX_REF_DEPTH {
            errors.push(format!("{}: schema nesting too deep", show(pointer)));
            return;
        }
        let schema = self.resolve(schema);
        let Some(s) = schema.as_object() else {
            // `true`/`false` schemas are not OpenAPI 3.0; treat anything else as "anything goes".
            if *schema == Value::Bool(false) {
                errors.push(format!("{}: no value is allowed here", show(pointer)));
            }
            return;
        };
        let nullable = s.get("nullable") == Some(&Value::Bool(true));
        if value.is_null() {
            if nullable {
                return;
            }
            if let Some(t) = s.get("type").and_then(Value::as_str) {
                errors.push(format!("{}: expected {t}, got null", show(pointer)));
                return;
            }
        }
        if let Some(t) = s.get("type").and_then(Value::as_str) {
            if !type_matches(t, value) {
                errors.push(format!("{}: expected {t}, got {}", show(pointer), short(value)));
                return;
            }
        }
        if let Some(options) = s.get("enum").and_then(Value::as_array) {
            if !options.contains(value) {
                let listed: Vec<String> = options.iter().map(Value::to_string).collect();
                errors.push(format!(
                    "{}: {} is not one of [{}]",
                    show(pointer),
                    short(value),
                    listed.join(", ")
                ));
            }
        }
        if let Some(all) = s.get("allOf").and_then(Value::as_array) {
            for sub in all {
                self.validate_at(sub, value, pointer, depth + 1, errors);
            }
        }
        for keyword in ["oneOf", "anyOf"] {
            if let Some(alternatives) = s.get(keyword).and_then(Value::as_array) {
                let mut summaries = Vec::new();
                let mut matched = false;
                for (i, sub) in alternatives.iter().enumerate() {
                    let mut sub_errors = Vec::new();
                    self.validate_at(sub, value, pointer, depth + 1, &mut sub_errors);
                    if sub_errors.is_empty() {
                        matched = true;
                        break;
                    }
                    let name = sub["$ref"]
                        .as_str()
                        .map(|r| r.rsplit('/').next().unwrap_or(r).to_string());
                    summaries.push(format!(
                        "{}: {}{}",
                        name.unwrap_or_else(|| format!("#{i}")),
                        sub_errors[0],
                        if sub_errors.len() > 1 {
                            format!(" (+{} more)", sub_errors.len() - 1)
                        } else {
                            String::new()
                        }
                    ));
                }
                if !matched {
                    errors.push(format!(
                        "{}: matches none of the {keyword} alternatives [{}]",
                        show(pointer),
                        summaries.join("; ")
                    ));
                }
            }
        }
        match value {
            Value::Object(object) => self.validate_object(s, object, pointer, depth, errors),
            Value::Array(items) => {
                if let Some(n) = s.get("minItems").and_then(Value::as_u64) {
                    if (items.len() as u64) < n {
                        errors.push(format!(
                            "{}: {} items, fewer than minItems {n}",
                            show(pointer),
                            items.len()
                        ));
                    }
                }
                if let Some(n) = s.get("maxItems").and_then(Value::as_u64) {
                    if items.len() as u64 > n {
                        errors.push(format!(
                            "{}: {} items, more than maxItems {n}",
                            show(pointer),
                            items.len()
                        ));
                    }
                }
                if let Some(item_schema) = s.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.validate_at(item_schema, item, &format!("{pointer}/{i}"), depth + 1, errors);
                    }
                }
            }
            Value::String(text) => {
                let len = text.chars().count() as u64;
                if let Some(n) = s.get("minLength").and_then(Value::as_u64) {
                    if len < n {
                        errors.push(format!("{}: length {len} is less than minLength {n}", show(pointer)));
                    }
                }
                if let Some(n) = s.get("maxLength").and_then(Value::as_u64) {
                    if len > n {
                        errors.push(format!("{}: length {len} is more than maxLength {n}", show(pointer)));
                    }
                }
            }
            Value::Number(n) => {
                let x = n.as_f64().unwrap_or(f64::NAN);
                if let Some(min) = s.get("minimum").and_then(Value::as_f64) {
                    let exclusive = s.get("exclusiveMinimum") == Some(&Value::Bool(true));
                    if x < min || (exclusive && x == min) {
                        errors.push(format!("{}: {n} is below the minimum {min}", show(pointer)));
                    }
                }
                if let Some(max) = s.get("maximum").and_then(Value::as_f64) {
                    let exclusive = s.get("exclusiveMaximum") == Some(&Value::Bool(true));
                    if x > max || (exclusive && x == max) {
                        errors.push(format!("{}: {n} is above the maximum {max}", show(pointer)));
                    }
                }
            }
            _ => {}
        }
    }

    fn validate_object(
        &self,
        s: &Map<String, Value>,
        object: &Map<String, Value>,
        pointer: &str,
        depth: usize,
        errors: &mut Vec<String>,
    ) {
        let properties = s.get("properties").and_then(Value::as_object);
        if let Some(required) = s.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !object.contains_key(name) {
                    errors.push(format!("{}: required property `{name}` is missing", show(pointer)));
                }
            }
        }
        for (key, v) in object {
            let child = format!("{pointer}/{}", escape(key));
            match properties.and_then(|p| p.get(key)) {
                Some(property) => self.validate_at(property, v, &child, depth + 1, errors),
                None => match s.get("additionalProperties") {
                    Some(Value::Bool(false)) => {
                        errors.push(format!("{}: property `{key}` is not allowed", show(pointer)));
                    }
                    Some(extra) if extra.is_object() => self.validate_at(extra, v, &child, depth + 1, errors),
                    _ => {}
                },
            }
        }
    }
}

/// Follows `$ref` chains inside `doc` (only local `#/...` references exist in the subset).
fn resolve_in<'a>(doc: &'a Value, mut value: &'a Value) -> &'a Value {
    for _ in 0..MAX_REF_DEPTH {
        let Some(reference) = value.get("$ref").and_then(Value::as_str) else {
            return value;
        };
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("only local $refs are supported, got {reference}"));
        value = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("$ref {reference} does not resolve in the API description"));
    }
    panic!("$ref chain too long");
}

fn match_segments(template: &[Segment], parts: &[&str], captures: &mut Vec<(String, String)>) -> bool {
    let Some((first, rest)) = template.split_first() else {
        return parts.is_empty();
    };
    match first {
        Segment::Literal(text) => !parts.is_empty() && parts[0] == text && match_segments(rest, &parts[1..], captures),
        Segment::Param { name, multi } => {
            let most = if *multi { parts.len() } else { parts.len().min(1) };
            for take in 1..=most {
                let value = parts[..take].join("/");
                if value.is_empty() {
                    continue;
                }
                let mark = captures.len();
                captures.push((name.clone(), value));
                if match_segments(rest, &parts[take..], captures) {
                    return true;
                }
                captures.truncate(mark);
            }
            false
        }
    }
}

/// The JSON schema of a request body or response: `application/json` if documented, otherwise
/// the first media type with a schema.
fn media_schema(object: &Value) -> Option<&Value> {
    let content = object.get("content")?.as_object()?;
    content
        .get("application/json")
        .and_then(|m| m.get("schema"))
        .or_else(|| content.values().find_map(|m| m.get("schema")))
}

fn declared_names(op: &Operation, location: &str) -> String {
    let names: Vec<&str> = op
        .parameters
        .iter()
        .filter(|p| p["in"] == location)
        .filter_map(|p| p["name"].as_str())
        .collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

fn type_matches(expected: &str, value: &Value) -> bool {
    match expected {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|x| x.fract() == 0.0),
        "null" => value.is_null(),
        _ => true,
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn show(pointer: &str) -> &str {
    if pointer.is_empty() {
        "(root)"
    } else {
        pointer
    }
}

/// A short rendering of a value for messages: its type and, for scalars, the value.
fn short(value: &Value) -> String {
    match value {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) if s.chars().count() > 40 => format!("string {:?}…", s.chars().take(40).collect::<String>()),
        Value::String(s) => format!("string {s:?}"),
        Value::Array(a) => format!("array of {}", a.len()),
        Value::Object(_) => "object".to_string(),
    }
}
