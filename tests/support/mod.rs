//! Test support shared by the integration tests: a stateful fake of the GitHub REST API
//! ([`github::FakeGitHub`]), with the part of the GraphQL API flagramp uses ([`graphql`]), and a
//! checker of requests and responses against GitHub's own API description
//! ([`openapi::OpenApi`]).

// Each test module uses a different part of the support code.
#![allow(dead_code)]

pub mod backfill;
pub mod bench;
pub mod github;
pub mod graphql;
pub mod launchdarkly;
pub mod openapi;
pub mod repo;

/// A whole percentage, `pct(10)` = 10 %: `Percent` counts thousandths of a percent.
pub fn pct(p: u32) -> flagramp::percent::Percent {
    flagramp::percent::Percent::from_millis(p * 1000).unwrap()
}

/// SHA-1 of `data` (FIPS 180-4). Only for git object ids in tests: there is no sha1 crate here.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    let mut h: [u32; 5] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0];
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&((data.len() as u64).wrapping_mul(8)).to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 80];
        for (word, bytes) in w.iter_mut().zip(block.chunks_exact(4)) {
            *word = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        for i in 16..80 {
            w[i] = (w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]).rotate_left(1);
        }
        let [mut a, mut b, mut c, mut d, mut e] = h;
        for (i, word) in w.iter().enumerate() {
            let (f, k) = match i {
                0..=19 => ((b & c) | (!b & d), 0x5A82_7999),
                20..=39 => (b ^ c ^ d, 0x6ED9_EBA1),
                40..=59 => ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC),
                _ => (b ^ c ^ d, 0xCA62_C1D6),
            };
            let t = a
                .rotate_left(5)
                .wrapping_add(f)
                .wrapping_add(e)
                .wrapping_add(k)
                .wrapping_add(*word);
            e = d;
            d = c;
            c = b.rotate_left(30);
            b = a;
            a = t;
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 20];
    for (chunk, x) in out.chunks_exact_mut(4).zip(h) {
        chunk.copy_from_slice(&x.to_be_bytes());
    }
    out
}

/// Lower-case hex SHA-1 of `data`.
pub fn sha1_hex(data: &[u8]) -> String {
    sha1(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// The git blob id of `content`, which is what GitHub's contents API calls the file's `sha`:
/// SHA-1 of `"blob <len>\0"` followed by the bytes.
pub fn git_blob_sha(content: &[u8]) -> String {
    let mut object = format!("blob {}\0", content.len()).into_bytes();
    object.extend_from_slice(content);
    sha1_hex(&object)
}

/// Decodes `%XX` escapes (and nothing else: `+` stays `+`, as in a URL path).
pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let (Some(h), Some(l)) = (
                bytes.get(i + 1).and_then(|c| (*c as char).to_digit(16)),
                bytes.get(i + 2).and_then(|c| (*c as char).to_digit(16)),
            ) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes a query value, keeping RFC 3986 unreserved characters and `/`.
pub fn percent_encode_query(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A flagd file the live tests start from (the flagd evaluator and the Prometheus runs): the flag flagramp owns (off) between flags it must not
/// touch, one of them with targeting of its own and one with metadata.
pub const FLAGD_FILE: &str = r#"{
  "$schema": "https://flagd.dev/schema/v0/flags.json",
  "flags": {
    "dark-mode": {
      "state": "ENABLED",
      "variants": { "on": true, "off": false },
      "defaultVariant": "on"
    },
    "new-checkout": {
      "state": "DISABLED",
      "variants": { "on": true, "off": false },
      "defaultVariant": "off",
      "metadata": { "owner": "checkout-team" }
    },
    "beta-banner": {
      "state": "ENABLED",
      "variants": { "shown": true, "hidden": false },
      "defaultVariant": "hidden",
      "targeting": {
        "if": [{ "ends_with": [{ "var": "email" }, "@example.com"] }, "shown", "hidden"]
      }
    },
    "search-v2": {
      "state": "ENABLED",
      "variants": { "on": true, "off": false },
      "defaultVariant": "off",
      "targeting": { "fractional": [{ "var": "tenant" }, ["on", 30], ["off", 70]] }
    }
  },
  "metadata": { "flagSetId": "web" }
}
"#;

/// A recorded Prometheus answer from tests/fixtures/prometheus (the recorded error answer notes
/// its status after the body; that note is dropped).
pub fn prometheus_fixture(name: &str) -> String {
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/prometheus/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    text.trim_end().trim_end_matches(" HTTP 400").to_string()
}

/// Every `.rs` file below `dir`, for the source scans (tests/front_ends.rs, tests/typed_errors.rs).
pub fn rust_files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// What each check's source answered, at a fixed time and without a control query, for tests
/// that feed the engine directly.
pub fn measured(values: &[flagramp::check::Measurement]) -> Vec<flagramp::check::Measured> {
    let at = "2026-11-24T08:59:00Z".parse().expect("a fixed time");
    values
        .iter()
        .map(|m| flagramp::check::Measured::value(m.clone(), at))
        .collect()
}

/// A file under `tests/fixtures/`, as it is.
pub fn fixture_text(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}
