//! One escaping function per sink, for every string flagramp did not write itself (rollout and
//! check names, flag keys, queries, values, errors, a person's reason, metric answers):
//!
//! - [`plain`]: a line of text for a terminal or the step log — nothing can start a new line,
//!   move the cursor or reorder the text.
//! - [`workflow_data`] and [`workflow_property`]: a workflow command's message and properties
//!   (`::error file=…::message`), as GitHub's toolkit escapes them; [`log`] keeps any other line
//!   of the step log from being read as a workflow command.
//! - [`markdown`] and [`markdown_block`]: the job summary and pull request comments — no raw
//!   HTML, no mention, no link, no way out of a table cell or a code block.
//! - [`slack`]: Slack's mrkdwn (notifications) — no link, mention or channel ping.
//! - [`mermaid_string`]: a quoted string of a Mermaid chart (a title) inside a fenced block of
//!   the job summary or a pull request comment.
//! - JSON needs none of its own: every JSON flagramp writes is serialized by serde.

/// Unicode format characters (general category Cf), which reorder or hide text (U+202E
/// right-to-left override, zero-width characters), and the line and paragraph separators.
fn is_format(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x0600..=0x0605 | 0x061C | 0x06DD | 0x070F | 0x0890..=0x0891 | 0x08E2 | 0x180E
        | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F | 0xFEFF
        | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F | 0x1BCA0..=0x1BCA3
        | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F)
}

/// Whether `c` is a control (Cc) or format (Cf) character: these never reach a sink raw.
pub fn is_control_or_format(c: char) -> bool {
    c.is_control() || is_format(c)
}

/// One line of plain text: control and format characters become visible escapes (`\n`,
/// `\u{202e}`), so the text cannot start a new line, send terminal escapes or reorder itself.
pub fn plain(text: &str) -> String {
    if !text.chars().any(is_control_or_format) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_control_or_format(c) => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// A workflow command's message: `%`, CR and LF escaped, as the runner's toolkit does; other
/// control and format characters (a right-to-left override) become visible escapes as in
/// [`plain`].
pub fn workflow_data(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '%' => out.push_str("%25"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            c if is_control_or_format(c) => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    // The runner also reads its older `##[name]` form anywhere in a line.
    out.replace("##[", "#\u{200B}#[")
}

/// The runner's percent-encoding of a workflow command's data, and nothing more: a mask must
/// name the secret exactly as it will appear.
fn command_percent(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

/// A workflow command's property value: like [`workflow_data`], and `:` and `,` too.
pub fn workflow_property(text: &str) -> String {
    workflow_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// `::add-mask::` lines for a secret; each line of a multi-line value is masked on its own.
pub fn mask_command(value: &str) -> String {
    value
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| format!("::add-mask::{}\n", command_percent(line)))
        .collect()
}

/// Text for the step log that is not a workflow command of flagramp's own: a line that would
/// read as one (`::name::` after leading blanks, or `##[name]` anywhere, the runner's older
/// form) gets a zero-width space that the runner does not trim, so it is only shown.
pub fn log(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let body = line.trim_start();
        if body.starts_with("::") {
            let indent = line.len() - body.len();
            out.push_str(&line[..indent]);
            out.push('\u{200B}');
            out.push_str(body);
        } else {
            out.push_str(line);
        }
    }
    out.replace("##[", "#\u{200B}#[")
}

/// Text for Markdown and inline HTML (the job summary, pull request comments), safe anywhere
/// in a line, a table cell or an HTML element (never an attribute): the characters that open
/// HTML, links, code spans and table cells become character references, line breaks and control characters become spaces or visible escapes, `@`
/// mentions and bare links get a zero-width joiner so GitHub neither pings nor links them.
pub fn markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let chars: Vec<char> = text.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '|' => out.push_str("&#124;"),
            '`' => out.push_str("&#96;"),
            '[' => out.push_str("&#91;"),
            ']' => out.push_str("&#93;"),
            '\\' => out.push_str("&#92;"),
            '\n' | '\r' | '\t' => out.push(' '),
            // `@name` pings and `a@b.c` links: the joiner breaks both, and still reads as `@`.
            '@' => out.push_str("@\u{200D}"),
            // `https://…`: the joiner after `:` stops GitHub's autolinker.
            ':' if chars.get(i + 1) == Some(&'/') => out.push_str(":\u{200D}"),
            // `www.example.com` is linked without a scheme.
            '.' if i >= 3 && chars[i - 3..i].iter().collect::<String>().eq_ignore_ascii_case("www") => {
                out.push_str(".\u{200D}")
            }
            c if is_control_or_format(c) => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// Text for a Slack message (mrkdwn): `&`, `<` and `>` become the entities Slack documents,
/// so no text can open a link, a `<!channel>` ping or a `<@user>` mention; control and format
/// characters become visible escapes, as in [`plain`], so the text stays on its line.
pub fn slack(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in plain(text).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// A fenced code block whose fence no line of `text` can close; inside it nothing is HTML,
/// a mention or a link. Control and format characters are shown as escapes, line by line.
pub fn markdown_block(text: &str) -> String {
    let longest_run = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run.max(2) + 1);
    let body: Vec<String> = text.lines().map(plain).collect();
    format!("{fence}\n{}\n{fence}\n", body.join("\n"))
}

/// The inside of a double-quoted Mermaid string (a chart's title), on one line: Mermaid has no
/// backslash escapes, so `"` (which would end the string), `#` (which starts Mermaid's own
/// entity codes), `` ` `` (which could close the Markdown fence around the chart), `<`, `>` and
/// `&` become Mermaid entity codes (`#quot;`, `#35;`, `#96;`, …); line breaks become spaces
/// and other control and format characters visible escapes.
pub fn mermaid_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '#' => out.push_str("#35;"),
            '"' => out.push_str("#quot;"),
            '`' => out.push_str("#96;"),
            '<' => out.push_str("#lt;"),
            '>' => out.push_str("#gt;"),
            '&' => out.push_str("#amp;"),
            '\n' | '\r' | '\t' => out.push(' '),
            c if is_control_or_format(c) => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_stays_on_one_line() {
        assert_eq!(
            plain("a\nb\r::error::x\u{202E}\u{1b}[2J"),
            "a\\nb\\r::error::x\\u{202e}\\u{1b}[2J"
        );
        assert_eq!(plain("héllo 50%"), "héllo 50%");
    }

    #[test]
    fn escapes_like_the_toolkit() {
        assert_eq!(workflow_data("50% done\r\nnext"), "50%25 done%0D%0Anext");
        assert_eq!(workflow_property("a:b,c"), "a%3Ab%2Cc");
        assert_eq!(mask_command("line1\nline2\n"), "::add-mask::line1\n::add-mask::line2\n");
    }

    #[test]
    fn log_lines_are_never_commands() {
        let out = log("ok\n  ::error::pwned\n::set-output name=x::y\nsee ##[error]x\n");
        for line in out.lines() {
            assert!(!line.trim_start().starts_with("::"), "{line}");
            assert!(!line.contains("##["), "{line}");
        }
        assert!(out.starts_with("ok\n  \u{200B}::error::pwned\n"));
    }

    #[test]
    fn markdown_has_no_html_mention_or_link() {
        let hostile = "<img src=x onerror=alert(1)> @octocat [x](https://evil.example) `code` a|b\n# h www.evil.example mail@evil.example";
        let out = markdown(hostile);
        for bad in ["<", ">", "@o", "@e", "[", "](", "`", "|", "\n", "https://", "www.e"] {
            assert!(!out.contains(bad), "{bad:?} in {out}");
        }
    }

    #[test]
    fn slack_text_has_no_link_or_ping() {
        let out = slack("<!channel> <https://evil.example|click> & a\nb");
        assert_eq!(out, "&lt;!channel&gt; &lt;https://evil.example|click&gt; &amp; a\\nb");
    }

    #[test]
    fn code_blocks_cannot_be_closed_from_inside() {
        let out = markdown_block("a\n```\n<b>\n````x");
        assert!(out.starts_with("`````\n"), "{out}");
        assert!(out.ends_with("\n`````\n"), "{out}");
    }

    #[test]
    fn mermaid_strings_stay_inside_their_quotes_and_the_fence() {
        let out = mermaid_string("a\"b\n```\r#quot; <x>&\u{202E}");
        for bad in ['"', '\n', '\r', '`', '<', '>', '\u{202E}'] {
            assert!(!out.contains(bad), "{bad:?} in {out}");
        }
        assert_eq!(mermaid_string("new-checkout.v2"), "new-checkout.v2");
        assert_eq!(mermaid_string("#quot;"), "#35;quot;");
    }
}
