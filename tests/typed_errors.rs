//! Library errors are typed (`thiserror` enums with their sources chained): no `Result<_, String>`
//! anywhere in `src/` but the binary's front end (`src/cli/`), which may use `anyhow`. A source
//! scan keeps it that way.

use std::path::Path;

use crate::support::rust_files;

/// The lines of `text` (comments left out) with a `Result<…, String>`: a `Result` whose last
/// type argument is `String`, however nested its first one is (`Result<Vec<(u8, String)>, String>`).
fn string_errors(text: &str) -> Vec<usize> {
    let code: String = text
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = code[from..].find("Result<").map(|i| from + i) {
        from = at + "Result<".len();
        let word_before = at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        if word_before {
            continue;
        }
        let (mut depth, mut last_arg, mut end) = (1, None, None);
        for (i, &b) in bytes.iter().enumerate().skip(from) {
            match b {
                b'<' | b'(' | b'[' => depth += 1,
                // `->` in an `Fn(…) -> T` argument closes nothing.
                b'>' if bytes[i - 1] == b'-' => {}
                b'>' | b')' | b']' => depth -= 1,
                b',' if depth == 1 => last_arg = Some(i + 1),
                _ => {}
            }
            if depth == 0 {
                end = Some(i);
                break;
            }
        }
        if let (Some(arg), Some(end)) = (last_arg, end) {
            if code[arg..end].trim() == "String" {
                found.push(code[..at].matches('\n').count() + 1);
            }
        }
    }
    found
}

#[test]
fn the_scan_sees_string_errors() {
    let sample = "fn a() -> Result<u8, String> {}\n\
        fn b() -> Result<Vec<(Range<usize>, String)>, String> {}\n\
        // fn c() -> Result<u8, String>\n\
        fn d() -> Result<String, AppError> {}\n\
        fn e() -> io::Result<String> {}\n\
        let f = |x: &dyn Fn(&str) -> Option<u8>| -> Result<HashMap<String, u8>,\n String> { x };\n\
        fn g() -> MyResult<u8, String> {}\n";
    assert_eq!(string_errors(sample), vec![1, 2, 6]);
}

#[test]
fn library_errors_are_typed() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    files.sort();
    let front_end = root.join("src").join("cli");
    let mut offences = Vec::new();
    for file in files.iter().filter(|f| !f.starts_with(&front_end)) {
        let text = std::fs::read_to_string(file).unwrap();
        for line in string_errors(&text) {
            offences.push(format!("{}:{line}", file.strip_prefix(root).unwrap().display()));
        }
    }
    assert!(
        offences.is_empty(),
        "library functions return `Result<_, String>` (give them a thiserror type, sources chained):\n{}",
        offences.join("\n")
    );
    assert!(files.len() > 20, "the scan found too few files: {files:?}");
}
