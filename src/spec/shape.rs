//! A first pass over a spec's YAML events, before any tree is built.
//!
//! The loader under marked-yaml recurses once per nesting level, so `- - - - …` a megabyte long
//! would overflow the stack, and the tree it builds costs memory per node; it also reads only
//! the first document and silently ignores the rest. The event parser itself is a loop, so
//! walking its events first bounds depth and node count, and finds a second document, for the
//! cost of parsing twice a file of at most [`super::MAX_SPEC_BYTES`].

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::{Marker, ScanError, TScalarStyle};

/// Deeper than any spec needs (the deepest field is 5 levels down).
pub const MAX_DEPTH: usize = 32;

/// Far more values than any spec needs; each costs memory in the tree.
pub const MAX_NODES: usize = 20_000;

/// What the first pass found.
#[derive(Debug)]
pub enum Problem {
    /// Nesting deeper than [`MAX_DEPTH`], at the node that goes too deep. The spec is not loaded.
    TooDeep(Marker),
    /// More than [`MAX_NODES`] values, at the first one too many. The spec is not loaded.
    TooManyNodes(Marker),
    /// A second, non-empty document, at its start. The first document is still checked.
    SecondDocument(Marker),
    /// A syntax error after the first document, which the loader never reads.
    SyntaxAfterFirstDocument(ScanError),
}

impl Problem {
    /// Whether the spec must not be loaded at all.
    pub fn stops_loading(&self) -> bool {
        matches!(self, Problem::TooDeep(_) | Problem::TooManyNodes(_))
    }
}

/// Walks the events of `text`; `None` when nothing is wrong with its shape.
///
/// A syntax error inside the first document is left to the loader, which reports it the same way.
pub fn check(text: &str) -> Option<Problem> {
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    let mut nodes = 0usize;
    let mut documents = 0usize;
    let mut first_document_ended = false;
    loop {
        let (event, mark) = match parser.next_token() {
            Ok(next) => next,
            Err(e) if first_document_ended => return Some(Problem::SyntaxAfterFirstDocument(e)),
            Err(_) => return None,
        };
        match event {
            Event::StreamEnd => return None,
            Event::DocumentStart => {
                documents += 1;
                if documents > 1 && !is_empty_document(&mut parser) {
                    return Some(Problem::SecondDocument(mark));
                }
            }
            Event::DocumentEnd => first_document_ended = true,
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                nodes += 1;
                depth += 1;
                if depth > MAX_DEPTH {
                    return Some(Problem::TooDeep(mark));
                }
            }
            Event::MappingEnd | Event::SequenceEnd => depth = depth.saturating_sub(1),
            Event::Scalar(..) | Event::Alias(..) => nodes += 1,
            Event::StreamStart | Event::Nothing => {}
        }
        if nodes > MAX_NODES {
            return Some(Problem::TooManyNodes(mark));
        }
    }
}

/// After a `---`: whether the document holds nothing but an implicit empty value (a trailing
/// `---`, perhaps with comments).
fn is_empty_document(parser: &mut Parser<std::str::Chars<'_>>) -> bool {
    match parser.peek() {
        Ok((Event::Scalar(value, TScalarStyle::Plain, 0, None), _)) if value.is_empty() => {}
        _ => return false,
    }
    let _ = parser.next_token();
    matches!(parser.peek(), Ok((Event::DocumentEnd, _)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_specs_pass() {
        assert!(check("version: 1\nflag: { key: x }\nchecks: [a, b]\n").is_none());
        assert!(check("---\nversion: 1\n...\n").is_none());
        assert!(check("version: 1\n---\n# nothing more\n").is_none());
        assert!(check("").is_none());
    }

    #[test]
    fn a_second_document_is_found_at_its_start() {
        match check("version: 1\n---\nversion: 2\n") {
            Some(Problem::SecondDocument(m)) => assert_eq!((m.line(), m.col()), (2, 0)),
            other => panic!("{other:?}"),
        }
        assert!(matches!(check("a: 1\n--- b\n"), Some(Problem::SecondDocument(_))));
    }

    #[test]
    fn depth_and_size_are_bounded() {
        let deep = "- ".repeat(200_000) + "x\n";
        match check(&deep) {
            Some(Problem::TooDeep(m)) => assert_eq!((m.line(), m.col()), (1, 2 * MAX_DEPTH)),
            other => panic!("{other:?}"),
        }
        let flow = "[".repeat(100) + &"]".repeat(100);
        assert!(matches!(check(&flow), Some(Problem::TooDeep(_))));
        let wide = format!("[{}]", "1,".repeat(MAX_NODES + 1));
        assert!(matches!(check(&wide), Some(Problem::TooManyNodes(_))));
    }

    #[test]
    fn syntax_after_the_first_document_is_reported() {
        // The loader stops after `...`; an unclosed quote after it would go unseen.
        match check("a: 1\n...\n'x\n") {
            Some(Problem::SyntaxAfterFirstDocument(e)) => assert_eq!(e.marker().line(), 3),
            other => panic!("{other:?}"),
        }
        assert!(check("a: [1\n").is_none(), "left to the loader");
    }
}
