//! The GitHub Action's front end: reads what the runner provides (`INPUT_*`, `GITHUB_*`, the
//! event payload, the workspace), enters the workspace, and hands it all to
//! `flagramp::action::act`, printing the step log it produces.

use std::path::{Path, PathBuf};

use serde_json::Value;

use flagramp::action::{self, commands, ActionEnv, Inputs, MAX_EVENT_BYTES};
use flagramp::secrets::Secrets;

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Prints to the step log; a closed pipe is not worth a panic.
fn print_log(text: &str) {
    let _ = super::write_stdout(text);
}

fn read_event(path: &str) -> Result<Value, String> {
    let bytes = flagramp::fsutil::read_capped(Path::new(path), MAX_EVENT_BYTES)
        .map_err(|e| format!("GITHUB_EVENT_PATH {path} {e}"))?
        .ok_or_else(|| format!("GITHUB_EVENT_PATH {path} does not exist: the runner writes the event payload there"))?;
    let event: Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("GITHUB_EVENT_PATH {path} is not JSON: {e}"))?;
    if !event.is_object() {
        return Err(format!(
            "GITHUB_EVENT_PATH {path} is not an event: the runner writes a JSON object there"
        ));
    }
    Ok(event)
}

fn read_runner_env() -> Result<ActionEnv, String> {
    let need = |name: &str| {
        env(name).ok_or_else(|| format!("{name} is not set: `flagramp action` runs inside a GitHub Actions job"))
    };
    let event_name = need("GITHUB_EVENT_NAME")?;
    let event = match env("GITHUB_EVENT_PATH") {
        Some(path) => read_event(&path)?,
        None => Value::Null,
    };
    let repository = need("GITHUB_REPOSITORY")?;
    let server = env("GITHUB_SERVER_URL").unwrap_or_else(|| "https://github.com".into());
    let run_url = match env("GITHUB_RUN_ID") {
        Some(id) => format!("{server}/{repository}/actions/runs/{id}"),
        None => format!("{server}/{repository}/actions"),
    };
    Ok(ActionEnv {
        event_name,
        event,
        repository,
        api_url: env("GITHUB_API_URL").unwrap_or_else(|| "https://api.github.com".into()),
        graphql_url: env("GITHUB_GRAPHQL_URL"),
        run_url,
        actor: env("GITHUB_ACTOR").unwrap_or_else(|| "github-actions".into()),
        summary: env("GITHUB_STEP_SUMMARY").map(PathBuf::from),
        output: env("GITHUB_OUTPUT").map(PathBuf::from),
        started: tokio::time::Instant::now(),
        started_at: chrono::Utc::now(),
        workspace: PathBuf::new(),
    })
}

/// Runs the Action; returns the process exit code (0, 1, or 3 for a refused manual command).
///
/// `secrets` is the process's registry, made with [`Secrets::masking`], so that the binary's
/// stderr redacts what the Action learns.
pub async fn run(secrets: Secrets) -> u8 {
    let fail = |title: &str, message: &str| {
        print_log(&secrets.redact(&commands::error(title, &secrets.redact(message))));
        1
    };
    // Masks come before anything else is printed: every secret is masked as it is registered,
    // the token first.
    if let Some(token) = env("INPUT_GITHUB_TOKEN") {
        secrets.remember_github_token(&token);
    }
    // Outside a job, say so before judging inputs that only a job would set.
    let mut runner_env = match read_runner_env() {
        Ok(e) => e,
        Err(msg) => return fail("flagramp: not in a GitHub Actions job", &msg),
    };
    let inputs = match Inputs::read(&env) {
        Ok(i) => i,
        Err(e) => return fail("flagramp: invalid input", &e.to_string()),
    };
    // Spec paths, flag files and annotations are relative to the repository root.
    if let Some(workspace) = env("GITHUB_WORKSPACE") {
        if let Err(e) = std::env::set_current_dir(&workspace) {
            return fail("flagramp", &format!("cannot enter GITHUB_WORKSPACE {workspace}: {e}"));
        }
    }
    runner_env.workspace = match std::env::current_dir() {
        Ok(dir) => dir,
        Err(e) => return fail("flagramp", &format!("cannot read the working directory: {e}")),
    };
    match action::act(&inputs, &runner_env, &secrets, &print_log).await {
        Ok(code) => code,
        Err(e) => fail("flagramp", &e.to_string()),
    }
}
