//! The spec schema that editors fetch: `schema/rollout-v1.json` is what `flagramp schema spec`
//! prints, byte for byte, and its `$id` is its own raw URL. Every example spec names that URL in
//! its first line, loads, and validates against the committed file with an independent JSON
//! Schema validator (the `jsonschema` crate), as every spec of `tests/specs/good` does; specs the
//! reader rejects for their shape fail the schema too, so the checks are not vacuous.

use std::path::{Path, PathBuf};
use std::process::Command;

use flagramp::schema::{spec_modeline, SPEC_SCHEMA, SPEC_SCHEMA_URL};
use serde_json::Value;
use yaml_rust2::{Yaml, YamlLoader};

/// The committed copy, relative to the repository root.
const COMMITTED: &str = "schema/rollout-v1.json";

/// The one command that brings the committed copy up to date with `src/spec/schema.json`.
const REGENERATE: &str = "cargo run -q -- schema spec > schema/rollout-v1.json";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn committed_schema() -> Value {
    let text =
        std::fs::read_to_string(repo(COMMITTED)).unwrap_or_else(|e| panic!("{COMMITTED}: {e}; run `{REGENERATE}`"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{COMMITTED} is not JSON ({e}); run `{REGENERATE}`"))
}

fn validator() -> jsonschema::Validator {
    jsonschema::validator_for(&committed_schema()).expect("the committed schema is a valid JSON Schema")
}

/// A YAML scalar as JSON Schema sees it: YAML 1.2's core types, which is how the spec's numbers,
/// booleans and strings are meant (`rollback: off` is a string, `gate: false` a boolean).
fn to_json(yaml: &Yaml, file: &Path) -> Value {
    match yaml {
        Yaml::Integer(n) => Value::from(*n),
        Yaml::Real(_) => {
            let n = yaml.as_f64().expect("a real is a number");
            serde_json::Number::from_f64(n)
                .map(Value::Number)
                .unwrap_or_else(|| panic!("{}: {n} has no JSON form", file.display()))
        }
        Yaml::String(s) => Value::from(s.as_str()),
        Yaml::Boolean(b) => Value::from(*b),
        Yaml::Null => Value::Null,
        Yaml::Array(items) => items.iter().map(|item| to_json(item, file)).collect(),
        Yaml::Hash(map) => map
            .iter()
            .map(|(key, value)| {
                let key = match key {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(n) => n.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    other => panic!("{}: a key that is not a scalar: {other:?}", file.display()),
                };
                (key, to_json(value, file))
            })
            .collect::<serde_json::Map<String, Value>>()
            .into(),
        Yaml::Alias(_) | Yaml::BadValue => panic!("{}: {yaml:?} has no JSON form", file.display()),
    }
}

/// The spec's one document as JSON. An empty document after it (a trailing `---`) is nothing,
/// as the reader takes it.
fn spec_as_json(file: &Path) -> Value {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut documents = YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    while documents.len() > 1 && documents.last().is_some_and(Yaml::is_null) {
        documents.pop();
    }
    match documents.as_slice() {
        [document] => to_json(document, file),
        other => panic!("{}: {} YAML documents, not one", file.display(), other.len()),
    }
}

/// Every way the instance breaks the schema, one line each (empty when it is valid).
fn schema_errors(validator: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    validator
        .iter_errors(instance)
        .map(|error| format!("at `{}`: {error}", error.instance_path()))
        .collect()
}

/// `*.yml` and `*.yaml` files under `dir` (recursively, hidden folders included) that sit in a
/// `rollouts` folder, sorted.
fn spec_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "yml" || e == "yaml")
                && path.parent().and_then(Path::file_name).is_some_and(|p| p == "rollouts")
            {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

/// The example specs: every spec in a `rollouts` folder under `examples/`.
fn example_specs() -> Vec<PathBuf> {
    let specs = spec_files_under(&repo("examples"));
    assert!(!specs.is_empty(), "no example spec under examples/");
    specs
}

fn catalogue(kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo(&format!("tests/specs/{kind}")))
        .expect("catalogue")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_committed_schema_is_what_flagramp_schema_spec_prints() {
    let output = Command::new(env!("CARGO_BIN_EXE_flagramp"))
        .args(["schema", "spec"])
        .env_clear()
        .output()
        .expect("flagramp runs");
    assert!(output.status.success(), "`flagramp schema spec` failed: {output:?}");
    assert!(
        output.stderr.is_empty(),
        "`flagramp schema spec` wrote to stderr: {output:?}"
    );
    let committed = std::fs::read(repo(COMMITTED)).unwrap_or_else(|e| panic!("{COMMITTED}: {e}; run `{REGENERATE}`"));
    assert!(
        committed == output.stdout,
        "{COMMITTED} is not what `flagramp schema spec` prints: edit src/spec/schema.json (the source), \
         then run `{REGENERATE}`"
    );
}

#[test]
fn the_schema_id_is_the_raw_url_of_the_committed_file() {
    assert_eq!(
        SPEC_SCHEMA_URL,
        format!("https://raw.githubusercontent.com/flagramp/flagramp/main/{COMMITTED}"),
        "the URL editors fetch is the committed file on the default branch"
    );
    let source: Value = serde_json::from_str(SPEC_SCHEMA).expect("the source schema is JSON");
    assert_eq!(source["$id"], SPEC_SCHEMA_URL, "src/spec/schema.json's $id");
    assert_eq!(committed_schema()["$id"], SPEC_SCHEMA_URL, "{COMMITTED}'s $id");
}

/// The first line points editors at the schema; the reader takes it for the comment it is.
#[test]
fn every_example_spec_names_the_schema_first_and_loads() {
    let modeline = spec_modeline();
    assert_eq!(modeline, format!("# yaml-language-server: $schema={SPEC_SCHEMA_URL}"));
    for file in example_specs() {
        let text = std::fs::read_to_string(&file).expect("example spec");
        assert_eq!(
            text.lines().next(),
            Some(modeline.as_str()),
            "{}: the first line must be `{modeline}`",
            file.display()
        );
        if let Err(errors) = flagramp::spec::load_all(std::slice::from_ref(&file)) {
            panic!("{}: flagramp rejects it:\n{errors}", file.display());
        }
    }
}

#[test]
fn every_example_spec_validates_against_the_committed_schema() {
    let validator = validator();
    for file in example_specs() {
        let spec = spec_as_json(&file);
        let errors = schema_errors(&validator, &spec);
        assert!(errors.is_empty(), "{}:\n{}", file.display(), errors.join("\n"));

        // The same spec with a field flagramp does not know fails, so the check above is real.
        let mut broken = spec.clone();
        broken["colour"] = Value::from("red");
        assert!(
            !validator.is_valid(&broken),
            "{}: an unknown top-level field passes the schema",
            file.display()
        );
    }
}

/// The starter spec `flagramp init` writes, for every provider and source, names the schema
/// first and passes it, so a new user's editor agrees with `flagramp validate` from the start.
#[test]
fn every_starter_spec_of_init_validates_against_the_committed_schema() {
    use flagramp::init::{Starter, StarterProvider, StarterSource};
    let validator = validator();
    let dir = tempfile::tempdir().unwrap();
    for provider in [
        StarterProvider::Flagd,
        StarterProvider::Unleash,
        StarterProvider::LaunchDarkly,
    ] {
        for source in [StarterSource::Prometheus, StarterSource::Datadog, StarterSource::Http] {
            let text = Starter { provider, source }.spec_text();
            assert_eq!(text.lines().next(), Some(spec_modeline().as_str()));
            let file = dir.path().join(format!("{provider:?}-{source:?}.yml"));
            std::fs::write(&file, &text).unwrap();
            let errors = schema_errors(&validator, &spec_as_json(&file));
            assert!(
                errors.is_empty(),
                "{provider:?} with {source:?}:\n{}",
                errors.join("\n")
            );
        }
    }
}

/// Every spec flagramp accepts passes the schema, so an editor never marks a good spec wrong.
#[test]
fn every_good_catalogue_spec_validates_against_the_committed_schema() {
    let validator = validator();
    let files = catalogue("good");
    assert!(!files.is_empty(), "no spec in tests/specs/good");
    for file in files {
        if let Err(errors) = flagramp::spec::load_all(std::slice::from_ref(&file)) {
            panic!("{}: flagramp rejects it:\n{errors}", file.display());
        }
        let errors = schema_errors(&validator, &spec_as_json(&file));
        assert!(errors.is_empty(), "{}:\n{}", file.display(), errors.join("\n"));
    }
}

/// Specs with a wrong shape fail the schema as they fail flagramp, each at the place the
/// mistake is.
#[test]
fn specs_of_the_wrong_shape_fail_the_committed_schema() {
    let validator = validator();
    let cases = [
        ("unknown_top_level_field.yml", ""),
        ("unknown_field_in_check.yml", "/checks/0"),
        ("unknown_field_in_flag.yml", "/flag"),
        ("version_2.yml", "/version"),
        ("version_missing.yml", ""),
        ("checks_missing.yml", ""),
        ("provider_unknown.yml", "/flag/provider"),
        ("percent_150.yml", "/stages/"),
        ("check_without_pass.yml", "/checks/0"),
    ];
    for (name, place) in cases {
        let file = repo(&format!("tests/specs/errors/{name}"));
        assert!(
            flagramp::spec::load_all(std::slice::from_ref(&file)).is_err(),
            "{name}: flagramp accepts it, so it is no example of a bad spec"
        );
        let errors: Vec<String> = validator
            .iter_errors(&spec_as_json(&file))
            .map(|error| error.instance_path().to_string())
            .collect();
        assert!(
            errors.iter().any(|at| at.starts_with(place)),
            "{name}: the schema does not reject it at `{place}` (errors at {errors:?})"
        );
    }
}

/// `flagramp schema --help` tells how a spec points an editor at the schema (the line is longer
/// than the help is wide, so it shows the two halves of [`spec_modeline`]).
#[test]
fn schema_help_shows_how_a_spec_points_editors_at_the_schema() {
    let output = Command::new(env!("CARGO_BIN_EXE_flagramp"))
        .args(["schema", "--help"])
        .env_clear()
        .output()
        .expect("flagramp runs");
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8(output.stdout).expect("UTF-8");
    let (comment, url) = spec_modeline()
        .split_once("$schema=")
        .map(|(c, u)| (format!("{c}$schema="), u.to_string()))
        .expect("a $schema= line");
    for part in [comment, url] {
        assert!(help.contains(&part), "`flagramp schema --help` shows `{part}`:\n{help}");
    }
}
