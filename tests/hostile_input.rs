//! Hostile spec input: arbitrary bytes and near-valid specs never panic or hang the reader, and
//! anything it accepts keeps the spec's promises; huge files, `/dev/zero` and YAML bombs are
//! refused with bounded memory and time.
//!
//! Trial counts are small in the normal suite; `FLAGRAMP_LONG=1` runs many more. Figures (cases,
//! slowest case, peak memory) are printed, for `cargo test -- --nocapture` and the docs.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use flagramp::duration::SpecDuration;
use flagramp::percent::Percent;
use flagramp::spec::text::{first_hidden, is_name};
use flagramp::spec::{load_all, parse_spec, RolloutSpec, MAX_SPEC_BYTES};
use proptest::prelude::*;

/// Cases per property: a quick run in the suite, a long one by hand.
fn cases(quick: u32, long: u32) -> u32 {
    if std::env::var_os("FLAGRAMP_LONG").is_some() {
        long
    } else {
        quick
    }
}

/// One case may take this long before it counts as a hang (generous: the machine is shared).
const SLOWEST_CASE: Duration = Duration::from_secs(2);

/// A spec using every part of the format, that the mutations start from.
const VALID: &str = r#"version: 1
name: new-checkout
description: New checkout flow
flag:
  provider: unleash
  key: new_checkout
  unleash: { url: https://unleash.example.com, project: default, environment: production, token_env: UNLEASH_TOKEN }
stages:
  - { percent: 10, bake: 1h30m }
  - 50
  - { percent: 100, bake: 2d }
sources:
  prom:
    provider: prometheus
    url: https://prometheus.example.com/
    token_env: PROM_TOKEN
    headers: { X-Scope-OrgID: { env: PROM_TENANT }, X-Team: checkout }
  local:
    provider: prometheus
    url: http://127.0.0.1:9090
    basic_auth: { username_env: PROM_USER, password_env: PROM_PASSWORD }
    timeout: 90s
checks:
  - name: success-rate
    source: prom
    query: sum(rate(ok[10m])) / sum(rate(all[10m]))
    pass: ">= 0.95"
    on_no_data: hold
  - name: smoke
    command: ["./scripts/smoke.sh", "--fast"]
    timeout: 30s
    pass: "== 1"
policy:
  failures_to_rollback: 2
  rollback: previous
  window: { days: Mon-Fri, hours: "09:00-17:00", timezone: Europe/Berlin }
report:
  pull_request: auto
"#;

/// What every accepted spec promises, whatever text it came from.
fn assert_promises(spec: &RolloutSpec) {
    assert!(is_name(&spec.name), "rollout name {:?}", spec.name);
    assert!(first_hidden(&spec.flag.key).is_none(), "flag key {:?}", spec.flag.key);
    assert!(!spec.stages.is_empty());
    assert!(
        spec.stages.windows(2).all(|w| w[0].percent < w[1].percent),
        "{:?}",
        spec.stages
    );
    assert_eq!(spec.stages.last().map(|s| s.percent), Some(Percent::FULL));
    for stage in &spec.stages {
        assert!(stage.bake <= SpecDuration::MAX, "{stage:?}");
        // The arithmetic that once overflowed: a stage's start plus its bake.
        assert!(chrono::Utc::now()
            .checked_add_signed(stage.bake.to_chrono().expect("a spec bake fits chrono"))
            .is_some());
    }
    assert!(!spec.checks.is_empty());
    for check in &spec.checks {
        assert!(is_name(&check.name), "check name {:?}", check.name);
        assert!(check.timeout <= SpecDuration::MAX && check.timeout.as_secs() > 0);
        if let Some(test) = check.threshold() {
            assert!(test.pass.threshold.is_finite());
        }
    }
    for (name, source) in &spec.sources {
        assert!(is_name(name), "source name {name:?}");
        let http = &source.http;
        assert!(http.timeout.is_none_or(|t| t <= SpecDuration::MAX));
        let url = url::Url::parse(&http.url).expect("an accepted URL parses");
        assert!(
            url.username().is_empty() && url.password().is_none(),
            "credentials in {}",
            http.url
        );
        assert!(matches!(url.scheme(), "http" | "https"), "{}", http.url);
    }
}

/// Parses `text` and checks the reader's own promises; returns how long it took.
fn parse_checked(text: &str) -> Duration {
    let started = Instant::now();
    let (spec, _, diagnostics) = parse_spec(Path::new("rollouts/fuzz.yml"), text);
    let took = started.elapsed();
    assert!(took < SLOWEST_CASE, "took {took:?}");
    match &spec {
        Some(spec) => {
            assert!(diagnostics.is_empty());
            assert_promises(spec);
        }
        None => assert!(!diagnostics.is_empty(), "rejected without a reason"),
    }
    for d in &diagnostics {
        assert!(d.line >= 1 && d.column >= 1, "{d}");
        assert!(d.hint.as_deref().is_some_and(|h| !h.is_empty()), "{d}");
        assert!(first_hidden(&d.message).is_none(), "{d:?}");
    }
    took
}

/// One edit of a spec's text.
#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, String),
    Delete(usize, usize),
    Replace(usize, String),
    SwapLines(usize, usize),
    DuplicateLine(usize),
    /// `key: value` becomes `value: key`.
    SwapKeyAndValue(usize),
    /// Shifts a line's indentation by this many spaces (negative: removes).
    Indent(usize, i8),
}

/// Fragments that matter to YAML and to the spec reader.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            ":",
            "-",
            "- ",
            "[",
            "]",
            "{",
            "}",
            ",",
            "\"",
            "'",
            "#",
            "&a ",
            "*a",
            "!tag ",
            "|",
            ">",
            "%",
            "@",
            "`",
            "\t",
            "\n",
            "\r\n",
            " ",
            "  ",
            "---\n",
            "...\n",
            "\u{202e}",
            "\u{200b}",
            "\u{feff}",
            "\u{0}",
            "\u{1b}",
            "\u{85}",
            "\u{2028}",
            "é",
            "🚀",
            "0",
            "100",
            "-1",
            "1e999",
            "NaN",
            ".inf",
            "99999999999d",
            "366d",
            "0s",
            "true",
            "null",
            "~",
            "http://",
            "https://u:p@",
            "127.0.0.1",
            "[::1]",
            "..",
            "/",
            "\\",
            "$",
            "${{ x }}",
        ])
        .prop_map(str::to_string),
        "[ -~]{1,8}",
        any::<char>().prop_map(String::from),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let at = any::<prop::sample::Index>();
    prop_oneof![
        (at.clone(), fragment()).prop_map(|(i, f)| Mutation::Insert(i.index(VALID.len() + 1), f)),
        (at.clone(), 1usize..40).prop_map(|(i, n)| Mutation::Delete(i.index(VALID.len() + 1), n)),
        (at.clone(), fragment()).prop_map(|(i, f)| Mutation::Replace(i.index(VALID.len() + 1), f)),
        (at.clone(), at.clone()).prop_map(|(a, b)| Mutation::SwapLines(a.index(64), b.index(64))),
        at.clone().prop_map(|i| Mutation::DuplicateLine(i.index(64))),
        at.clone().prop_map(|i| Mutation::SwapKeyAndValue(i.index(64))),
        (at, -4i8..=4).prop_map(|(i, n)| Mutation::Indent(i.index(64), n)),
    ]
}

/// The nearest char boundary at or before `i`.
fn boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn apply(text: &mut String, m: &Mutation) {
    let mut lines: Vec<String> = text.split('\n').map(str::to_string).collect();
    let n = lines.len();
    match m {
        Mutation::Insert(i, f) => {
            let i = boundary(text, *i);
            text.insert_str(i, f);
            return;
        }
        Mutation::Delete(i, len) => {
            let start = boundary(text, *i);
            let end = boundary(text, start + len);
            text.replace_range(start..end, "");
            return;
        }
        Mutation::Replace(i, f) => {
            let start = boundary(text, *i);
            let end = boundary(text, start + f.len());
            text.replace_range(start..end, f);
            return;
        }
        Mutation::SwapLines(a, b) => lines.swap(a % n, b % n),
        Mutation::DuplicateLine(i) => {
            let line = lines[i % n].clone();
            lines.insert(i % n, line);
        }
        Mutation::SwapKeyAndValue(i) => {
            let line = &lines[i % n];
            let indent = line.len() - line.trim_start().len();
            if let Some((key, value)) = line.trim_start().split_once(": ") {
                lines[i % n] = format!("{}{}: {}", &line[..indent], value.trim(), key);
            }
        }
        Mutation::Indent(i, by) => {
            let line = &mut lines[i % n];
            if *by >= 0 {
                line.insert_str(0, &" ".repeat(*by as usize));
            } else {
                let strip = line.len() - line.trim_start_matches(' ').len();
                line.replace_range(..strip.min(by.unsigned_abs() as usize), "");
            }
        }
    }
    *text = lines.join("\n");
}

#[test]
fn the_starting_spec_is_valid() {
    let (spec, _, diagnostics) = parse_spec(Path::new("rollouts/fuzz.yml"), VALID);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    assert_promises(&spec.expect("valid"));
}

/// Where the byte cases are written: one file per thread, rewritten for every case (a temporary
/// directory per case costs more than the parse).
fn fuzz_file() -> std::path::PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("hostile-{:?}.yml", std::thread::current().id()))
}

/// Each pair is (choice, byte): a raw byte at the case's rate (`raw_in` of 0: none, 1: every
/// byte), otherwise a newline one time in ten and printable ASCII the rest. A raw byte is mostly
/// a control character or broken UTF-8, which the reader refuses at once; the other rates let
/// cases reach the YAML parser. (Mapping pairs is far cheaper for proptest than a union
/// strategy per byte.)
fn bytes_at_rate((raw_in, pairs): (u8, Vec<(u8, u8)>)) -> Vec<u8> {
    let raw_in = [0, 1, 20, 500][usize::from(raw_in % 4)];
    pairs
        .into_iter()
        .enumerate()
        .map(|(i, (choice, byte))| match choice % 10 {
            _ if raw_in > 0 && (i + usize::from(choice)) % raw_in == 0 => byte,
            0 => b'\n',
            _ => 0x20 + byte % 95,
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(512, 20_000), failure_persistence: None, ..ProptestConfig::default() })]

    /// Any bytes, through the file reader (cap, UTF-8, byte-order mark) and the parser; mostly
    /// printable ones, so that many cases get past the first control character into the YAML.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in (any::<u8>(), prop::collection::vec(any::<(u8, u8)>(), 0..2048)).prop_map(bytes_at_rate)) {
        let file = fuzz_file();
        std::fs::write(&file, &bytes).unwrap();
        let started = Instant::now();
        match load_all(std::slice::from_ref(&file)) {
            Ok(specs) => specs.iter().for_each(assert_promises),
            Err(errors) => prop_assert!(!errors.diagnostics.is_empty()),
        }
        prop_assert!(started.elapsed() < SLOWEST_CASE);
        parse_checked(&String::from_utf8_lossy(&bytes));
    }

    /// Arbitrary text built from YAML's and the spec's own pieces.
    #[test]
    fn yaml_shaped_text_never_panics(parts in prop::collection::vec(fragment(), 0..200)) {
        parse_checked(&parts.concat());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2_000, 50_000), failure_persistence: None, ..ProptestConfig::default() })]

    /// A valid spec with a few random edits: insertions, deletions, replacements, swapped lines,
    /// swapped keys and values, changed indentation.
    #[test]
    fn near_valid_specs_never_panic_and_keep_the_promises(mutations in prop::collection::vec(mutation(), 1..6)) {
        let mut text = VALID.to_string();
        for m in &mutations {
            apply(&mut text, m);
        }
        parse_checked(&text);
    }
}

/// How a run of the binary ended.
struct Measured {
    code: Option<i32>,
    output: String,
    peak_rss_kib: i64,
    wall: Duration,
}

/// Runs `flagramp ARGS` under GNU time (Debian's `time`, which `scripts/services install`
/// installs) for its peak resident memory, killing it after `limit`.
///
/// GNU time forks the binary from its own small process; `wait4` on a child of this test
/// process would also count what the test process held when it spawned (hundreds of MB while
/// other tests run), which hides the figure this test is about.
fn measure(args: &[&std::ffi::OsStr], limit: Duration) -> Measured {
    let out_dir = tempfile::tempdir().unwrap();
    let out_path = out_dir.path().join("out");
    let out = std::fs::File::create(&out_path).unwrap();
    let started = Instant::now();
    // Reaped below with wait4, which also reports its resource use; `Child::wait` would not.
    let rss_path = out_dir.path().join("peak-kib");
    assert!(
        Path::new("/usr/bin/time").exists(),
        "install Debian's `time` (scripts/services install does)"
    );
    #[allow(clippy::zombie_processes)]
    let child = std::process::Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&rss_path)
        .arg(env!("CARGO_BIN_EXE_flagramp"))
        .args(args)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: plain struct of integers, filled in by the kernel.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our own child, not yet reaped; the pointers live across the call.
        let reaped = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(reaped >= 0, "wait4: {}", std::io::Error::last_os_error());
        if reaped == pid {
            break;
        }
        if started.elapsed() > limit {
            // SAFETY: signalling our own unreaped child.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("flagramp {args:?} took longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let wall = started.elapsed();
    let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
    Measured {
        code,
        output: std::fs::read_to_string(&out_path).unwrap_or_default(),
        // GNU time's %M is the child's own ru_maxrss, in KiB.
        peak_rss_kib: std::fs::read_to_string(&rss_path)
            .ok()
            .and_then(|t| t.lines().last().and_then(|l| l.trim().parse().ok()))
            .unwrap_or_else(|| panic!("no peak memory from /usr/bin/time (usage: {})", usage.ru_maxrss)),
        wall,
    }
}

/// What a hostile file costs `flagramp validate`: it must fail cleanly, quickly and small.
///
/// A valid 1 KB spec measured the same way is printed beside it.
fn validate_is_bounded(label: &str, path: &Path, expected: &str) {
    let m = measure(&["validate".as_ref(), path.as_os_str()], Duration::from_secs(10));
    let baseline_dir = tempfile::tempdir().unwrap();
    let baseline_spec = baseline_dir.path().join("baseline.yml");
    std::fs::write(&baseline_spec, VALID).unwrap();
    let baseline = measure(
        &["validate".as_ref(), baseline_spec.as_os_str()],
        Duration::from_secs(10),
    );
    assert_eq!(baseline.code, Some(0), "{}", baseline.output);
    eprintln!(
        "hostile input `{label}`: exit {:?}, {:.0} ms, peak RSS {} KiB (a valid 1 KB spec: {:.0} ms, {} KiB)",
        m.code,
        m.wall.as_secs_f64() * 1000.0,
        m.peak_rss_kib,
        baseline.wall.as_secs_f64() * 1000.0,
        baseline.peak_rss_kib
    );
    assert_eq!(m.code, Some(1), "{label}: {}", m.output);
    assert!(m.output.contains(expected), "{label}: {}", m.output);
    assert!(!m.output.contains("panicked"), "{label}: {}", m.output);
    assert!(m.peak_rss_kib < 200 * 1024, "{label}: peak RSS {} KiB", m.peak_rss_kib);
}

#[test]
fn huge_files_dev_zero_and_yaml_bombs_are_refused_with_bounded_memory() {
    let dir = tempfile::tempdir().unwrap();

    // 100 MB: a valid spec followed by comment lines, read no further than the cap.
    let big = dir.path().join("big.yml");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
    f.write_all(VALID.as_bytes()).unwrap();
    let line = format!("# {}\n", "x".repeat(98));
    for _ in 0..(100 << 20) / line.len() {
        f.write_all(line.as_bytes()).unwrap();
    }
    f.into_inner().unwrap().sync_all().unwrap();
    assert!(std::fs::metadata(&big).unwrap().len() >= 100 << 20);
    let started = Instant::now();
    let errors = load_all(std::slice::from_ref(&big)).expect_err("too large");
    eprintln!("hostile input `100 MB file` in-process: {:?}", started.elapsed());
    assert!(errors.to_string().contains("larger than 1 MiB"), "{errors}");
    validate_is_bounded("100 MB file", &big, "larger than 1 MiB");

    // A link to an endless file.
    let zero = dir.path().join("zero.yml");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    validate_is_bounded("link to /dev/zero", &zero, "is not a regular file");

    // Just under the cap, each of the costliest shapes.
    let room = MAX_SPEC_BYTES as usize - 64;
    let shapes = [
        (
            "deep block nesting",
            "- ".repeat(room / 2),
            "nests deeper than 32 levels",
        ),
        // The scanner reads brackets ahead of the parser and stops at its own limit of 255.
        ("deep flow nesting", "[".repeat(room), "recursion limit exceeded"),
        (
            "500k values",
            format!("a: [{}]", "1,".repeat(room / 2 - 4)),
            "more than 20000 values",
        ),
        (
            "one huge value",
            format!("version: \"{}\"", "9".repeat(room - 16)),
            "unsupported spec version",
        ),
        // So many aliases that the value count stops it before the loader sees the first anchor.
        ("billion laughs, 1 MiB", bomb(room), "more than 20000 values"),
        (
            "billion laughs, 9 levels",
            bomb(600),
            "YAML anchors (`&name`) are not supported",
        ),
    ];
    for (label, text, expected) in shapes {
        assert!(text.len() as u64 <= MAX_SPEC_BYTES, "{label}: {} bytes", text.len());
        let path = dir.path().join(format!("{}.yml", label.replace(' ', "-")));
        std::fs::write(&path, &text).unwrap();
        let started = Instant::now();
        let (_, _, diagnostics) = parse_spec(&path, &text);
        eprintln!("hostile input `{label}` in-process: {:?}", started.elapsed());
        assert!(
            diagnostics.iter().any(|d| d.message.contains(expected)),
            "{label}: {diagnostics:?}"
        );
        validate_is_bounded(label, &path, expected);
    }
}

/// Billion laughs: each level ten aliases of the one before, as many levels as fit in `room`.
fn bomb(room: usize) -> String {
    let mut text = String::from("lol0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    let mut level = 1;
    loop {
        let line = format!(
            "lol{level}: &l{level} [{}]\n",
            vec![format!("*l{}", level - 1); 10].join(", ")
        );
        if text.len() + line.len() > room {
            return text;
        }
        text += &line;
        level += 1;
    }
}
