//! JSON Schemas for the spec and for the JSON outputs (`flagramp schema --output …`).

use crate::record::{DecisionRecord, Status};

/// The spec schema, kept beside the spec reader and tested against its field lists.
pub const SPEC_SCHEMA: &str = include_str!("spec/schema.json");

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

/// The schema as pretty JSON.
pub fn render(kind: SchemaKind) -> String {
    let value = match kind {
        SchemaKind::Spec => serde_json::from_str(SPEC_SCHEMA).expect("the spec schema is valid JSON"),
        SchemaKind::Decision => {
            serde_json::to_value(schemars::schema_for!(Vec<DecisionRecord>)).expect("schema serializes")
        }
        SchemaKind::Status => serde_json::to_value(schemars::schema_for!(Vec<Status>)).expect("schema serializes"),
    };
    serde_json::to_string_pretty(&value).expect("JSON serializes")
}
