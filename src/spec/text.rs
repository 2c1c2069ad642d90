//! Rules for the text a spec may carry in names and keys, and how spec text is shown back.

use std::borrow::Cow;

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// The longest rollout, check or source name.
pub const MAX_NAME_LEN: usize = 64;

/// Whether `name` is a rollout, check or source name: `^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`.
///
/// Names become file names (state), report headings and log lines, so they stay plain ASCII.
pub fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && name.len() <= MAX_NAME_LEN
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Whether `name` is a branch name git accepts (the rules of `git check-ref-format --branch`),
/// without hidden characters (see [`is_hidden`]).
pub fn is_branch_name(name: &str) -> bool {
    let bad_char =
        |c: char| c.is_ascii_control() || matches!(c, ' ' | '~' | '^' | ':' | '?' | '*' | '[' | '\\') || is_hidden(c);
    !name.is_empty()
        && name.len() <= 255
        && name != "@"
        && !name.chars().any(bad_char)
        && !name.contains("..")
        && !name.contains("@{")
        && !name.starts_with('-')
        && !name.ends_with('.')
        && name
            .split('/')
            .all(|part| !part.is_empty() && !part.starts_with('.') && !part.ends_with(".lock"))
}

/// Whether `c` is invisible or changes how the text around it is read: a control character (Cc,
/// e.g. newline, escape), a format character (Cf: bidi overrides such as U+202E, zero-width
/// characters such as U+200B, the byte-order mark) or a line or paragraph separator (Zl, Zp).
///
/// Such characters let a flag key look like another key, or break a log line in two.
pub fn is_hidden(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// The first hidden character in `text`, if any (see [`is_hidden`]).
pub fn first_hidden(text: &str) -> Option<char> {
    text.chars().find(|c| is_hidden(*c))
}

/// `U+202E` for a character.
pub fn code_point(c: char) -> String {
    format!("U+{:04X}", u32::from(c))
}

/// The longest diagnostic message or hint, in characters; longer ones are cut.
const MAX_SHOWN_CHARS: usize = 400;

/// Spec text as a diagnostic shows it: hidden characters written as `\u{202e}` so that what is
/// printed is what is in the file, and a very long text cut short (a spec value can be up to the
/// file's size).
pub fn shown(text: &str) -> Cow<'_, str> {
    if text.chars().count() <= MAX_SHOWN_CHARS && first_hidden(text).is_none() {
        return Cow::Borrowed(text);
    }
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == MAX_SHOWN_CHARS {
            out.push_str("… (cut)");
            break;
        }
        if is_hidden(c) {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_and_short() {
        for good in ["a", "new-checkout", "v1.2_beta", "0", &"a".repeat(64)] {
            assert!(is_name(good), "{good}");
        }
        for bad in [
            "",
            "-x",
            ".hidden",
            "_x",
            "new checkout",
            "a/b",
            "é",
            "a\u{202e}b",
            "a\u{200b}",
            &"a".repeat(65),
        ] {
            assert!(!is_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn branch_names_follow_git() {
        for good in [
            "main",
            "flagramp-state",
            "release/2026.11",
            "feature/new_checkout",
            "v1@x",
        ] {
            assert!(is_branch_name(good), "{good}");
        }
        for bad in [
            "",
            "@",
            "-main",
            "a..b",
            "a b",
            "a~1",
            "a^",
            "a:b",
            "a?",
            "a*",
            "a[",
            "a\\b",
            "a/",
            "/a",
            "a//b",
            ".a",
            "a/.b",
            "a.lock",
            "a/b.lock/c",
            "a.",
            "a@{1}",
            "a\nb",
            "a\u{202e}b",
            "a\u{7f}",
        ] {
            assert!(!is_branch_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn hidden_characters_are_control_format_and_separators() {
        for c in [
            '\n',
            '\t',
            '\u{1b}',
            '\u{7f}',
            '\u{202e}',
            '\u{2066}',
            '\u{200b}',
            '\u{200e}',
            '\u{feff}',
            '\u{2028}',
            '\u{2029}',
            '\u{e0001}',
        ] {
            assert!(is_hidden(c), "{}", code_point(c));
        }
        for c in ['a', ' ', 'é', '中', '🚀', '-', '\u{a0}'] {
            assert!(!is_hidden(c), "{}", code_point(c));
        }
        assert_eq!(first_hidden("new\u{202e}kcehc"), Some('\u{202e}'));
        assert_eq!(first_hidden("new-checkout"), None);
    }

    #[test]
    fn shown_text_reveals_hidden_characters_and_is_cut() {
        assert_eq!(shown("plain"), "plain");
        assert_eq!(shown("a\u{202e}b\nc"), "a\\u{202e}b\\u{a}c");
        let long = "x".repeat(10_000);
        let cut = shown(&long);
        assert!(cut.ends_with("… (cut)") && cut.chars().count() < 500, "{cut}");
    }
}
