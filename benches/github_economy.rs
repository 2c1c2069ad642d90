//! The GitHub economy benchmark (BENCHMARKS.md, "GitHub economy"; issue 11): 1,000 rollouts in
//! Action mode against the project's fake GitHub (tests/support/github.rs), with 50 ms added to
//! every answer, about api.github.com's latency from a runner. It reports requests, commits and
//! wall time for a run that starts every rollout, a run that records a first hold, a run where
//! nothing changes, and 8 chunk jobs run at once on one state branch; and, when given a previous
//! release's binary, the same runs made by it (the contents-API state store) as the baseline.
//! scripts/bench-github runs it.
//!
//! ```text
//! cargo bench --bench github_economy -- run [--rollouts N] [--repeat R] [--delay-ms MS]
//!                                           [--previous BINARY] [--previous-rollouts N]
//! ```
//!
//! Without `run` it runs a small smoke test (20 rollouts, no delay): `cargo test --all-targets`
//! runs bench targets with its own arguments, and nothing timed belongs there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[path = "../tests/support/mod.rs"]
mod support;

use support::github::FakeGitHub;

const TOKEN: &str = "ghs_benchTokenForTheFakeGitHub0123";
const REPO: &str = "octo-org/octo-repo";
const FLAGS: &str = "flags/flags.flagd.json";
const STATE_BRANCH: &str = "flagramp-state";
const CHUNKS: usize = 8;

struct Options {
    full: bool,
    rollouts: usize,
    repeat: usize,
    delay: Duration,
    previous: Option<PathBuf>,
    previous_rollouts: usize,
}

fn options() -> Result<Options, String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let full = args.iter().any(|a| a == "run");
    let value = |name: &str| -> Option<String> {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1).cloned())
    };
    let number = |name: &str, default: usize| -> Result<usize, String> {
        value(name).map_or(Ok(default), |v| {
            v.parse().map_err(|_| format!("{name} {v}: not a number"))
        })
    };
    Ok(Options {
        full,
        rollouts: number("--rollouts", if full { 1000 } else { 20 })?,
        repeat: number("--repeat", if full { 3 } else { 1 })?,
        delay: Duration::from_millis(number("--delay-ms", if full { 50 } else { 0 })? as u64),
        previous: value("--previous").map(PathBuf::from),
        previous_rollouts: number("--previous-rollouts", 1000)?,
    })
}

/// One process's cost, as the fake saw it.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    requests: usize,
    commits: usize,
    wall: Duration,
}

/// A workspace with `n` rollout specs whose flags share one flagd file, and a fake GitHub whose
/// default branch holds that file.
struct Setup {
    dir: tempfile::TempDir,
    fake: FakeGitHub,
    names: Vec<String>,
}

fn spec_text(name: &str, key: &str) -> String {
    format!(
        "version: 1\nname: {name}\nflag: {{ provider: flagd, key: {key}, flagd: {{ path: {FLAGS} }} }}\n\
         stages: [{{ percent: 10, bake: 1h }}, 100]\n\
         checks:\n  - {{ name: ok, command: [\"echo\", \"1\"], pass: \"== 1\" }}\n\
         report: {{ pull_request: none }}\n"
    )
}

async fn setup(n: usize, delay: Duration) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeGitHub::start("octo-org", "octo-repo", "main").await;
    let names: Vec<String> = (0..n).map(|i| format!("r{i:04}")).collect();
    let flags: Vec<String> = (0..n)
        .map(|i| format!("\"f{i:04}\": {{ \"state\": \"DISABLED\", \"variants\": {{ \"on\": true, \"off\": false }}, \"defaultVariant\": \"off\" }}"))
        .collect();
    fake.put_file(
        "main",
        FLAGS,
        format!("{{ \"flags\": {{ {} }} }}\n", flags.join(", ")).as_bytes(),
    );
    let specs = dir.path().join("repo/.github/rollouts");
    std::fs::create_dir_all(&specs).unwrap();
    for (i, name) in names.iter().enumerate() {
        std::fs::write(specs.join(format!("{name}.yml")), spec_text(name, &format!("f{i:04}"))).unwrap();
    }
    let event = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/github/schedule.synthetic.json");
    std::fs::copy(event, dir.path().join("event.json")).unwrap();
    fake.set_delay(delay);
    Setup { dir, fake, names }
}

/// `action.yml`'s input defaults, as the runner passes them.
fn action_defaults() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("action.yml")).unwrap();
    let root = marked_yaml::parse_yaml(0, &text).unwrap();
    let inputs = root.as_mapping().unwrap().get_mapping("inputs").unwrap();
    inputs
        .iter()
        .map(|(name, def)| {
            let default = def
                .as_mapping()
                .and_then(|m| m.get_scalar("default"))
                .map(|s| s.as_str().to_string())
                .unwrap_or_default();
            let value = if default.contains("github.token") {
                TOKEN.to_string()
            } else {
                default
            };
            (name.as_str().to_string(), value)
        })
        .collect()
}

fn commits(fake: &FakeGitHub) -> usize {
    fake.commits_on("main").len() + fake.commits_on(STATE_BRANCH).len()
}

/// One scheduled Action run of `binary` over `rollouts` (all when empty); its summary's last line.
async fn action(binary: &Path, setup: &Setup, job: usize, rollouts: &[String]) -> (Output, String) {
    let mut values = action_defaults();
    values.insert("comment".into(), "never".into());
    values.insert("rollouts".into(), rollouts.join(","));
    let summary = setup.dir.path().join(format!("summary-{job}.md"));
    let _ = std::fs::remove_file(&summary);
    let mut cmd = std::process::Command::new(binary);
    cmd.arg("action")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .current_dir(setup.dir.path());
    for (name, value) in &values {
        cmd.env(format!("INPUT_{}", name.to_ascii_uppercase()), value);
    }
    cmd.env("GITHUB_EVENT_NAME", "schedule")
        .env("GITHUB_EVENT_PATH", setup.dir.path().join("event.json"))
        .env("GITHUB_REPOSITORY", REPO)
        .env("GITHUB_API_URL", setup.fake.uri())
        .env("GITHUB_SERVER_URL", "https://github.com")
        .env("GITHUB_RUN_ID", "4242")
        .env("GITHUB_ACTOR", "octocat")
        .env("GITHUB_WORKSPACE", setup.dir.path().join("repo"))
        .env("GITHUB_STEP_SUMMARY", &summary)
        .env("GITHUB_OUTPUT", setup.dir.path().join(format!("output-{job}.txt")));
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    let text = std::fs::read_to_string(&summary).unwrap_or_default();
    let last = text.trim_end().lines().last().unwrap_or_default().to_string();
    (out, last)
}

type Output = std::process::Output;

/// One run of every rollout: its cost, and the decisions it reports.
async fn measured(binary: &Path, setup: &Setup) -> Result<(Cost, String), String> {
    let (requests, commits_before) = (setup.fake.requests().len(), commits(&setup.fake));
    let clock = Instant::now();
    let (out, last) = action(binary, setup, 0, &[]).await;
    let wall = clock.elapsed();
    if out.status.code() != Some(0) {
        return Err(format!(
            "the run failed ({:?}): {}",
            out.status.code(),
            tail(&String::from_utf8_lossy(&out.stdout))
        ));
    }
    let cost = Cost {
        requests: setup.fake.requests().len() - requests,
        commits: commits(&setup.fake) - commits_before,
        wall,
    };
    Ok((cost, last))
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// The three sequential runs: start all, first hold (recorded), nothing changes.
async fn sequential(binary: &Path, n: usize, delay: Duration) -> Result<[(Cost, String); 3], String> {
    let setup = setup(n, delay).await;
    let start = measured(binary, &setup).await?;
    let hold = measured(binary, &setup).await?;
    let unchanged = measured(binary, &setup).await?;
    Ok([start, hold, unchanged])
}

/// 8 chunk jobs at once, each its share of the rollouts (the Action's `rollouts` input), on one
/// state branch and one flag file: each job's commits (from its summary's API line) and the whole.
async fn chunks(binary: &Path, n: usize, delay: Duration) -> Result<(Cost, Vec<usize>, Vec<String>), String> {
    let setup = setup(n, delay).await;
    let per = n.div_ceil(CHUNKS);
    let chunks: Vec<Vec<String>> = setup.names.chunks(per).map(<[String]>::to_vec).collect();
    let (requests, commits_before) = (setup.fake.requests().len(), commits(&setup.fake));
    let clock = Instant::now();
    let jobs = chunks
        .iter()
        .enumerate()
        .map(|(job, names)| action(binary, &setup, job + 1, names));
    let outs = futures::future::join_all(jobs).await;
    let wall = clock.elapsed();
    let mut per_job = Vec::new();
    let mut lines = Vec::new();
    for (out, last) in outs {
        if out.status.code() != Some(0) {
            return Err(format!(
                "a chunk job failed ({:?}): {}",
                out.status.code(),
                tail(&String::from_utf8_lossy(&out.stdout))
            ));
        }
        per_job.push(commits_in(&last).unwrap_or(usize::MAX));
        lines.push(last);
    }
    let cost = Cost {
        requests: setup.fake.requests().len() - requests,
        commits: commits(&setup.fake) - commits_before,
        wall,
    };
    Ok((cost, per_job, lines))
}

/// The commits a summary's API-use line reports (`…, 3 commits; …`).
fn commits_in(line: &str) -> Option<usize> {
    let before = line.split(" commit").next()?;
    before.rsplit(' ').next()?.parse().ok()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    match runtime.block_on(bench(&options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("github economy: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn bench(o: &Options) -> Result<(), String> {
    let current = Path::new(env!("CARGO_BIN_EXE_flagramp"));
    let n = o.rollouts;
    println!(
        "GitHub economy: {n} rollouts, {} ms per answer, {} repetition(s), median of each",
        o.delay.as_millis(),
        o.repeat
    );
    let mut seq: Vec<[(Cost, String); 3]> = Vec::new();
    let mut par: Vec<(Cost, Vec<usize>, Vec<String>)> = Vec::new();
    for _ in 0..o.repeat {
        seq.push(sequential(current, n, o.delay).await?);
        par.push(chunks(current, n, o.delay).await?);
    }
    let med = |f: &dyn Fn(usize) -> f64| median((0..o.repeat).map(f).collect());
    println!("\n| run | requests | commits | wall (s) | requests per rollout |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (i, what) in ["starts every rollout", "records a first hold", "nothing changes"]
        .iter()
        .enumerate()
    {
        let req = med(&|r| seq[r][i].0.requests as f64);
        println!(
            "| {what} | {req} | {} | {:.2} | {:.3} |",
            med(&|r| seq[r][i].0.commits as f64),
            med(&|r| seq[r][i].0.wall.as_secs_f64()),
            req / n as f64
        );
    }
    let req = med(&|r| par[r].0.requests as f64);
    println!(
        "| {CHUNKS} chunk jobs at once (all) | {req} | {} | {:.2} | {:.3} |",
        med(&|r| par[r].0.commits as f64),
        med(&|r| par[r].0.wall.as_secs_f64()),
        req / n as f64
    );
    let most = par.iter().flat_map(|p| p.1.iter().copied()).max().unwrap_or(0);
    println!("\nmost commits by one chunk job: {most}");
    println!("summary lines, first repetition:");
    println!("  starts every rollout: {}", seq[0][0].1);
    println!("  nothing changes:      {}", seq[0][2].1);
    for line in &par[0].2 {
        println!("  chunk job:            {line}");
    }

    if let Some(previous) = &o.previous {
        let m = o.previous_rollouts;
        println!(
            "\nBaseline: the previous release ({}), {m} rollouts, once",
            previous.display()
        );
        let runs = sequential(previous, m, o.delay).await?;
        println!("\n| run | requests | commits | wall (s) | requests per rollout |");
        println!("| --- | ---: | ---: | ---: | ---: |");
        for (i, what) in ["starts every rollout", "records a first hold", "nothing changes"]
            .iter()
            .enumerate()
        {
            let c = runs[i].0;
            println!(
                "| {what} | {} | {} | {:.2} | {:.3} |",
                c.requests,
                c.commits,
                c.wall.as_secs_f64(),
                c.requests as f64 / m as f64
            );
        }
    }

    if !o.full {
        // The smoke test: the shape of the figures, nothing timed.
        let [start, hold, unchanged] = &seq[0];
        check(
            start.0.commits <= 3,
            "the run that starts every rollout makes at most 3 commits",
        )?;
        check(hold.0.commits <= 3, "a run of holds makes at most 3 commits")?;
        check(unchanged.0.commits == 0, "a run where nothing changes makes no commit")?;
        check(most <= 3, "each chunk job makes at most 3 commits")?;
    }
    Ok(())
}

fn check(ok: bool, what: &str) -> Result<(), String> {
    if ok {
        Ok(())
    } else {
        Err(format!("not so: {what}"))
    }
}
