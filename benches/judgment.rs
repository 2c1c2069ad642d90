//! The judgment benchmark (BENCHMARKS.md): how well the `compare` check tells a regressed canary
//! from a healthy one, against a fixed error-rate threshold, on cohort histories whose truth is
//! known. scripts/bench-judgment runs the whole of it; this target generates and scores.
//!
//! ```text
//! cargo bench --bench judgment -- generate --out DIR --prom-url URL [--small] [--start RFC3339]
//! cargo bench --bench judgment -- score --truth DIR/truth.json --records records.json --out table.md
//! cargo bench --bench judgment -- selftest
//! ```
//!
//! Without a subcommand it runs the selftest: `cargo test --all-targets` runs bench targets
//! with its own arguments (such as `--include-ignored`), and the selftest is what it should run.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};

#[path = "judgment/design.rs"]
mod design;
#[path = "judgment/generate.rs"]
mod generate;
#[path = "judgment/rng.rs"]
mod rng;
#[path = "judgment/score.rs"]
mod score;
#[path = "judgment/selftest.rs"]
mod selftest;

const USAGE: &str = "usage: cargo bench --bench judgment -- <command>
  generate --out DIR --prom-url URL [--small] [--start RFC3339]
           histories (DIR/history.om), two rollout specs per trial (DIR/specs/), DIR/truth.json,
           known answers for the backfill check (DIR/expect.tsv) and the range (DIR/range)
  score --truth FILE --records FILE --out FILE
           the report (Markdown) from simulate's JSON records
  selftest the generator's and the scorer's own checks (also: no command)";

/// `--name value` pairs and `--flag`s after the subcommand; anything else is a usage error.
struct Args {
    values: Vec<(String, String)>,
    flags: Vec<String>,
}

impl Args {
    fn parse(args: &[String], with_value: &[&str], flags: &[&str]) -> Result<Args> {
        let mut out = Args {
            values: Vec::new(),
            flags: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            if with_value.contains(&arg.as_str()) {
                let value = it.next().with_context(|| format!("{arg} needs a value"))?;
                out.values.push((arg.clone(), value.clone()));
            } else if flags.contains(&arg.as_str()) {
                out.flags.push(arg.clone());
            } else {
                bail!("unexpected argument `{arg}`\n{USAGE}");
            }
        }
        Ok(out)
    }

    fn value(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, name: &str) -> Result<&str> {
        self.value(name).with_context(|| format!("{name} is required\n{USAGE}"))
    }

    fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }
}

fn generate(args: &[String]) -> Result<()> {
    let args = Args::parse(args, &["--out", "--prom-url", "--start"], &["--small"])?;
    let out = PathBuf::from(args.required("--out")?);
    let prom_url = args.required("--prom-url")?;
    let start: DateTime<Utc> = args
        .value("--start")
        .unwrap_or(design::DEFAULT_START)
        .parse()
        .context("--start: an RFC 3339 time")?;
    if start > Utc::now() - chrono::Duration::minutes(design::HISTORY_MIN) {
        bail!("--start {start}: the whole history must lie in the past, so Prometheus holds it all and simulate can replay it");
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let begun = std::time::Instant::now();
    let truth = generate::run(&generate::Options {
        out: &out,
        prom_url,
        small: args.flag("--small"),
        start,
    })?;
    eprintln!(
        "judgment: {} trials ({} rollouts) from {} to {}: {} samples, {} bytes of OpenMetrics (FNV-1a {}), in {:.1}s",
        truth.trials.len(),
        truth.trials.len() * 2,
        truth.history_start,
        truth.history_end,
        truth.samples,
        truth.openmetrics_bytes,
        truth.openmetrics_fnv1a64,
        begun.elapsed().as_secs_f64()
    );
    Ok(())
}

fn score(args: &[String]) -> Result<()> {
    let args = Args::parse(args, &["--truth", "--records", "--out"], &[])?;
    let read = |name: &str| -> Result<String> {
        let path = args.required(name)?;
        std::fs::read_to_string(path).with_context(|| format!("reading {path}"))
    };
    let truth = score::read_truth(&read("--truth")?)?;
    let records = score::read_records(&read("--records")?)?;
    let report = score::report(&truth, &records)?;
    let out = args.required("--out")?;
    std::fs::write(out, &report).with_context(|| format!("writing {out}"))?;
    eprintln!("judgment: {} records scored, report in {out}", records.len());
    Ok(())
}

fn run() -> Result<()> {
    // `cargo bench` adds `--bench` to whatever it passes on.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| a != "--bench").collect();
    match args.first().map(String::as_str) {
        Some("generate") => generate(&args[1..]),
        Some("score") => score(&args[1..]),
        Some("selftest") => selftest::run(),
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            Ok(())
        }
        _ => {
            if !args.is_empty() {
                eprintln!("judgment: no command in {args:?} (test harness arguments?): running the selftest");
            }
            selftest::run()
        }
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("judgment: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
