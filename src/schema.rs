//! JSON Schemas for the spec and for the JSON outputs (`flagramp schema spec|decision|status`).

use crate::record::{DecisionRecord, Status};

/// The spec schema, kept beside the spec reader and tested against its field lists. It is the
/// source of `schema/rollout-v1.json`, the copy editors fetch: after changing it, regenerate that
/// copy with `cargo run -q -- schema spec > schema/rollout-v1.json` (tests/schema_files.rs fails
/// until the two agree byte for byte).
pub const SPEC_SCHEMA: &str = include_str!("spec/schema.json");

/// Where editors fetch the spec schema: the raw URL of `schema/rollout-v1.json` on the default
/// branch, and the schema's `$id`. Specs name it in their first line,
/// `# yaml-language-server: $schema=<this URL>`, which YAML reads as a comment.
pub const SPEC_SCHEMA_URL: &str = "https://raw.githubusercontent.com/flagramp/flagramp/main/schema/rollout-v1.json";

/// The first line of an example or starter spec: it points YAML language servers (VS Code's YAML
/// extension, Neovim's yamlls, …) at [`SPEC_SCHEMA_URL`] for completion and checks as one types.
pub fn spec_modeline() -> String {
    format!("# yaml-language-server: $schema={SPEC_SCHEMA_URL}")
}

/// Which schema to print.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaKind {
    /// A rollout spec file.
    Spec,
    /// The array `plan` and `run` print.
    Decision,
    /// The array `status` prints.
    Status,
}

/// Fields left out of the JSON when empty; every other field is always present, `null` or not.
const OMITTED_WHEN_EMPTY: &[&str] = &[
    "detail",
    "flag_error",
    "refused",
    "diverged",
    "unchanged_since",
    "control_value",
    "compare",
    "units",
    "stage_counts",
    "srm",
];

/// The schema as pretty JSON.
pub fn render(kind: SchemaKind) -> String {
    let mut value = match kind {
        SchemaKind::Spec => serde_json::from_str(SPEC_SCHEMA).expect("the spec schema is valid JSON"),
        SchemaKind::Decision => {
            serde_json::to_value(schemars::schema_for!(Vec<DecisionRecord>)).expect("schema serializes")
        }
        SchemaKind::Status => serde_json::to_value(schemars::schema_for!(Vec<Status>)).expect("schema serializes"),
    };
    if kind != SchemaKind::Spec {
        require_always_present(&mut value);
    }
    serde_json::to_string_pretty(&value).expect("JSON serializes")
}

/// schemars leaves `Option` fields out of `required`, but the outputs always print them (as
/// `null` when empty), and consumers should be able to rely on that.
fn require_always_present(schema: &mut serde_json::Value) {
    let Some(defs) = schema.get_mut("$defs").and_then(serde_json::Value::as_object_mut) else {
        return;
    };
    for def in defs.values_mut() {
        let Some(props) = def.get("properties").and_then(serde_json::Value::as_object) else {
            continue;
        };
        let required: Vec<serde_json::Value> = props
            .keys()
            .filter(|k| !OMITTED_WHEN_EMPTY.contains(&k.as_str()))
            .map(|k| serde_json::Value::String(k.clone()))
            .collect();
        def["required"] = serde_json::Value::Array(required);
    }
}
