//! The part of GitHub's GraphQL API the fake GitHub serves (`POST /graphql`): a parser for the
//! query language (operations, variables, aliases, arguments, inline fragments), a validator
//! against the few schema facts below, and an executor over a [`Resolver`] that answers from
//! the fake's own commits and pull requests.
//!
//! The schema facts are GitHub's, as its GraphQL reference documents them
//! (docs.github.com/graphql/reference): `Query.repository(owner: String!, name: String!,
//! followRenames: Boolean = true): Repository`, `Repository.object(expression: String, oid:
//! GitObjectID): GitObject` (an interface that `Commit`, `Tree`, `Blob` and `Tag` implement),
//! `Commit.history(after, before: String, first, last: Int, path: String, since, until:
//! GitTimestamp, author: CommitAuthor): CommitHistoryConnection!`, `Commit.tree: Tree!`,
//! `Commit.file(path: String!): TreeEntry`, `Tree.entries: [TreeEntry!]`, `TreeEntry.name:
//! String!`, `.path: String`, `.oid: GitObjectID!`, `.type: String!`, `.mode: Int!`, `.size:
//! Int!`, `.object: GitObject`, `Blob.byteSize: Int!`, `.isBinary: Boolean`, `.isTruncated:
//! Boolean!`, `.text: String` (and `oid` on every git object), `Commit.associatedPullRequests(
//! after, before: String, first, last: Int, orderBy: PullRequestOrder):
//! PullRequestConnection`, `CommitHistoryConnection.nodes: [Commit]`,
//! `PullRequestConnection.nodes: [PullRequest]`, `PullRequest.number: Int!`. A field the fake
//! does not know is refused as GitHub refuses an unknown field, so a query that asks for
//! something else fails here rather than on GitHub. Every connection needs `first` or `last`,
//! from 1 to 100 (docs.github.com/graphql/guides/using-pagination-in-the-graphql-api).
//!
//! Answers follow the GraphQL specification's response shape: `data` and `errors`, each error
//! with `message`, `locations` and `path` (GitHub adds `type`, such as `NOT_FOUND`), all with
//! HTTP 200; a query that does not validate gets `errors` and no `data`.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// A position in the query text, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// A GraphQL error as the answer carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct GqlError {
    pub message: String,
    pub pos: Option<Pos>,
    pub path: Vec<String>,
    /// GitHub's `type` (`NOT_FOUND`, `MISSING_PAGINATION_BOUNDARIES`, …), if it gives one.
    pub kind: Option<&'static str>,
}

impl GqlError {
    /// An error a resolver meets: its message and GitHub's `type`; the executor adds where.
    pub fn new(message: impl Into<String>, kind: Option<&'static str>) -> GqlError {
        GqlError {
            message: message.into(),
            pos: None,
            path: Vec::new(),
            kind,
        }
    }

    fn at(pos: Pos, message: impl Into<String>) -> GqlError {
        GqlError {
            message: message.into(),
            pos: Some(pos),
            path: Vec::new(),
            kind: None,
        }
    }

    pub fn to_json(&self) -> Value {
        let mut error = json!({ "message": self.message });
        if let Some(kind) = self.kind {
            error["type"] = json!(kind);
        }
        if !self.path.is_empty() {
            error["path"] = json!(self.path);
        }
        if let Some(p) = self.pos {
            error["locations"] = json!([{ "line": p.line, "column": p.column }]);
        }
        error
    }
}

// ----- the query language ---------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Punct(char),
    Spread,
    Name(String),
    Int(i64),
    Float(f64),
    Str(String),
}

fn lex(text: &str) -> Result<Vec<(Token, Pos)>, GqlError> {
    let chars: Vec<char> = text.chars().collect();
    let (mut i, mut line, mut line_start) = (0, 1, 0);
    let mut tokens = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        let pos = Pos {
            line,
            column: i - line_start + 1,
        };
        match c {
            '\n' => {
                line += 1;
                line_start = i + 1;
                i += 1;
            }
            // Commas are insignificant in GraphQL, like white space.
            ' ' | '\t' | '\r' | ',' | '\u{feff}' => i += 1,
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '.' if chars[i..].starts_with(&['.', '.', '.']) => {
                tokens.push((Token::Spread, pos));
                i += 3;
            }
            '!' | '$' | '(' | ')' | ':' | '=' | '@' | '[' | ']' | '{' | '|' | '}' | '&' => {
                tokens.push((Token::Punct(c), pos));
                i += 1;
            }
            '"' => {
                let (value, next) = lex_string(&chars, i).ok_or_else(|| GqlError::at(pos, "Unterminated string"))?;
                line += chars[i..next].iter().filter(|c| **c == '\n').count();
                tokens.push((Token::Str(value), pos));
                i = next;
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                tokens.push((Token::Name(chars[start..i].iter().collect()), pos));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || ".eE+-".contains(chars[i])) {
                    i += 1;
                }
                let number: String = chars[start..i].iter().collect();
                let token = match number.parse::<i64>() {
                    Ok(n) => Token::Int(n),
                    Err(_) => Token::Float(
                        number
                            .parse()
                            .map_err(|_| GqlError::at(pos, format!("Parse error on \"{number}\"")))?,
                    ),
                };
                tokens.push((token, pos));
            }
            other => return Err(GqlError::at(pos, format!("Parse error on \"{other}\""))),
        }
    }
    Ok(tokens)
}

/// A string or block string starting at `start`: its value and the index after it.
fn lex_string(chars: &[char], start: usize) -> Option<(String, usize)> {
    if chars[start..].starts_with(&['"', '"', '"']) {
        let mut i = start + 3;
        while i + 2 < chars.len() {
            if chars[i..].starts_with(&['"', '"', '"']) {
                return Some((chars[start + 3..i].iter().collect(), i + 3));
            }
            i += 1;
        }
        return None;
    }
    let mut value = String::new();
    let mut i = start + 1;
    while i < chars.len() {
        match chars[i] {
            '"' => return Some((value, i + 1)),
            '\n' => return None,
            '\\' => {
                let escaped = *chars.get(i + 1)?;
                match escaped {
                    'u' => {
                        let hex: String = chars.get(i + 2..i + 6)?.iter().collect();
                        value.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                        i += 6;
                        continue;
                    }
                    'n' => value.push('\n'),
                    't' => value.push('\t'),
                    'r' => value.push('\r'),
                    'b' => value.push('\u{8}'),
                    'f' => value.push('\u{c}'),
                    other => value.push(other),
                }
                i += 2;
            }
            c => {
                value.push(c);
                i += 1;
            }
        }
    }
    None
}

/// A type in a variable definition: `String`, `[Int]`, `String!`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeRef {
    Named(String),
    List(Box<TypeRef>),
    NonNull(Box<TypeRef>),
}

impl std::fmt::Display for TypeRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TypeRef::Named(n) => write!(f, "{n}"),
            TypeRef::List(t) => write!(f, "[{t}]"),
            TypeRef::NonNull(t) => write!(f, "{t}!"),
        }
    }
}

/// An argument's value: a variable, or a constant (lists and objects of them included).
#[derive(Debug, Clone, PartialEq)]
pub enum ArgValue {
    Variable(String, Pos),
    Const(Value),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub alias: Option<String>,
    pub name: String,
    pub args: Vec<(String, ArgValue)>,
    pub selection: Vec<Selection>,
    pub pos: Pos,
}

impl Field {
    /// The key of this field in the answer.
    pub fn key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Selection {
    Field(Field),
    /// `... on Type { … }` (or `... { … }` without a type condition).
    Inline {
        on: Option<(String, Pos)>,
        selection: Vec<Selection>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct VariableDefinition {
    pub name: String,
    pub ty: TypeRef,
    pub default: Option<Value>,
    pub pos: Pos,
}

/// One query operation: what the fake serves.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub name: Option<String>,
    pub variables: Vec<VariableDefinition>,
    pub selection: Vec<Selection>,
}

struct Parser {
    tokens: Vec<(Token, Pos)>,
    at: usize,
    end: Pos,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(t, _)| t)
    }

    fn pos(&self) -> Pos {
        self.tokens.get(self.at).map_or(self.end, |(_, p)| *p)
    }

    fn unexpected(&self) -> GqlError {
        let what = match self.peek() {
            None => "end of file".to_string(),
            Some(Token::Punct(c)) => format!("\"{c}\""),
            Some(Token::Spread) => "\"...\"".to_string(),
            Some(Token::Name(n)) => format!("\"{n}\""),
            Some(Token::Int(n)) => format!("\"{n}\""),
            Some(Token::Float(n)) => format!("\"{n}\""),
            Some(Token::Str(s)) => format!("\"\\\"{s}\\\"\""),
        };
        GqlError::at(self.pos(), format!("Parse error on {what}"))
    }

    fn punct(&mut self, c: char) -> Result<(), GqlError> {
        if self.peek() == Some(&Token::Punct(c)) {
            self.at += 1;
            Ok(())
        } else {
            Err(self.unexpected())
        }
    }

    fn is_punct(&self, c: char) -> bool {
        self.peek() == Some(&Token::Punct(c))
    }

    fn name(&mut self) -> Result<String, GqlError> {
        match self.peek() {
            Some(Token::Name(n)) => {
                let n = n.clone();
                self.at += 1;
                Ok(n)
            }
            _ => Err(self.unexpected()),
        }
    }

    fn document(&mut self) -> Result<Operation, GqlError> {
        let operation = match self.peek() {
            Some(Token::Punct('{')) => Operation {
                name: None,
                variables: Vec::new(),
                selection: self.selection_set()?,
            },
            Some(Token::Name(kind)) if kind == "query" => {
                self.at += 1;
                let name = match self.peek() {
                    Some(Token::Name(_)) => Some(self.name()?),
                    _ => None,
                };
                let variables = if self.is_punct('(') {
                    self.variables()?
                } else {
                    Vec::new()
                };
                if self.is_punct('@') {
                    return Err(GqlError::at(self.pos(), "the fake GitHub serves no directives"));
                }
                Operation {
                    name,
                    variables,
                    selection: self.selection_set()?,
                }
            }
            Some(Token::Name(kind)) if kind == "mutation" || kind == "fragment" || kind == "subscription" => {
                return Err(GqlError::at(
                    self.pos(),
                    format!("the fake GitHub serves one query and no {kind}"),
                ))
            }
            _ => return Err(self.unexpected()),
        };
        if self.peek().is_some() {
            return Err(GqlError::at(
                self.pos(),
                "the fake GitHub serves one operation per document",
            ));
        }
        Ok(operation)
    }

    fn variables(&mut self) -> Result<Vec<VariableDefinition>, GqlError> {
        self.punct('(')?;
        let mut out = Vec::new();
        while !self.is_punct(')') {
            let pos = self.pos();
            self.punct('$')?;
            let name = self.name()?;
            self.punct(':')?;
            let ty = self.type_ref()?;
            let default = if self.is_punct('=') {
                self.at += 1;
                match self.value()? {
                    ArgValue::Const(v) => Some(v),
                    ArgValue::Variable(..) => return Err(self.unexpected()),
                }
            } else {
                None
            };
            out.push(VariableDefinition { name, ty, default, pos });
        }
        self.punct(')')?;
        Ok(out)
    }

    fn type_ref(&mut self) -> Result<TypeRef, GqlError> {
        let ty = if self.is_punct('[') {
            self.at += 1;
            let inner = self.type_ref()?;
            self.punct(']')?;
            TypeRef::List(Box::new(inner))
        } else {
            TypeRef::Named(self.name()?)
        };
        if self.is_punct('!') {
            self.at += 1;
            return Ok(TypeRef::NonNull(Box::new(ty)));
        }
        Ok(ty)
    }

    fn selection_set(&mut self) -> Result<Vec<Selection>, GqlError> {
        self.punct('{')?;
        let mut out = Vec::new();
        while !self.is_punct('}') {
            if self.peek().is_none() {
                return Err(self.unexpected());
            }
            out.push(self.selection()?);
        }
        self.punct('}')?;
        if out.is_empty() {
            return Err(self.unexpected());
        }
        Ok(out)
    }

    fn selection(&mut self) -> Result<Selection, GqlError> {
        if self.peek() == Some(&Token::Spread) {
            self.at += 1;
            let on = match self.peek() {
                Some(Token::Name(n)) if n == "on" => {
                    self.at += 1;
                    let pos = self.pos();
                    Some((self.name()?, pos))
                }
                Some(Token::Name(_)) => {
                    return Err(GqlError::at(self.pos(), "the fake GitHub serves no named fragments"))
                }
                _ => None,
            };
            return Ok(Selection::Inline {
                on,
                selection: self.selection_set()?,
            });
        }
        let pos = self.pos();
        let first = self.name()?;
        let (alias, name) = if self.is_punct(':') {
            self.at += 1;
            (Some(first), self.name()?)
        } else {
            (None, first)
        };
        let mut args = Vec::new();
        if self.is_punct('(') {
            self.at += 1;
            while !self.is_punct(')') {
                let arg = self.name()?;
                self.punct(':')?;
                args.push((arg, self.value()?));
            }
            self.punct(')')?;
        }
        if self.is_punct('@') {
            return Err(GqlError::at(self.pos(), "the fake GitHub serves no directives"));
        }
        let selection = if self.is_punct('{') {
            self.selection_set()?
        } else {
            Vec::new()
        };
        Ok(Selection::Field(Field {
            alias,
            name,
            args,
            selection,
            pos,
        }))
    }

    fn value(&mut self) -> Result<ArgValue, GqlError> {
        let pos = self.pos();
        let Some(token) = self.peek().cloned() else {
            return Err(self.unexpected());
        };
        self.at += 1;
        let constant = match token {
            Token::Punct('$') => return Ok(ArgValue::Variable(self.name()?, pos)),
            Token::Int(n) => json!(n),
            Token::Float(x) => json!(x),
            Token::Str(s) => json!(s),
            Token::Name(n) if n == "true" || n == "false" => json!(n == "true"),
            Token::Name(n) if n == "null" => Value::Null,
            // An enum value: kept as its name.
            Token::Name(n) => json!(n),
            Token::Punct('[') => {
                let mut items = Vec::new();
                while !self.is_punct(']') {
                    match self.value()? {
                        ArgValue::Const(v) => items.push(v),
                        ArgValue::Variable(..) => {
                            return Err(GqlError::at(pos, "the fake GitHub takes no variables inside lists"))
                        }
                    }
                }
                self.punct(']')?;
                Value::Array(items)
            }
            Token::Punct('{') => {
                let mut object = Map::new();
                while !self.is_punct('}') {
                    let key = self.name()?;
                    self.punct(':')?;
                    match self.value()? {
                        ArgValue::Const(v) => object.insert(key, v),
                        ArgValue::Variable(..) => {
                            return Err(GqlError::at(pos, "the fake GitHub takes no variables inside objects"))
                        }
                    };
                }
                self.punct('}')?;
                Value::Object(object)
            }
            _ => {
                self.at -= 1;
                return Err(self.unexpected());
            }
        };
        Ok(ArgValue::Const(constant))
    }
}

/// Parses a document holding one query.
pub fn parse(text: &str) -> Result<Operation, GqlError> {
    let tokens = lex(text)?;
    let end = Pos {
        line: text.lines().count().max(1),
        column: text.lines().last().map_or(1, |l| l.chars().count() + 1),
    };
    Parser { tokens, at: 0, end }.document()
}

// ----- the schema facts -----------------------------------------------------------------------

/// One field of the schema: its parent type, name, arguments (name, type) and type.
struct SchemaField {
    parent: &'static str,
    name: &'static str,
    args: &'static [(&'static str, &'static str)],
    ty: &'static str,
}

const CONNECTION_ARGS: &[(&str, &str)] = &[
    ("after", "String"),
    ("before", "String"),
    ("first", "Int"),
    ("last", "Int"),
];

/// The schema facts of the module's notes; connection arguments (`after`, `before`, `first`,
/// `last`) are added to every field whose type is a connection.
const SCHEMA: &[SchemaField] = &[
    SchemaField {
        parent: "Query",
        name: "repository",
        args: &[("owner", "String!"), ("name", "String!"), ("followRenames", "Boolean")],
        ty: "Repository",
    },
    SchemaField {
        parent: "Repository",
        name: "object",
        args: &[("expression", "String"), ("oid", "GitObjectID")],
        ty: "GitObject",
    },
    SchemaField {
        parent: "Repository",
        name: "nameWithOwner",
        args: &[],
        ty: "String!",
    },
    SchemaField {
        parent: "GitObject",
        name: "oid",
        args: &[],
        ty: "GitObjectID!",
    },
    SchemaField {
        parent: "Commit",
        name: "oid",
        args: &[],
        ty: "GitObjectID!",
    },
    SchemaField {
        parent: "Commit",
        name: "history",
        args: &[
            ("path", "String"),
            ("since", "GitTimestamp"),
            ("until", "GitTimestamp"),
            ("author", "CommitAuthor"),
        ],
        ty: "CommitHistoryConnection!",
    },
    SchemaField {
        parent: "Commit",
        name: "associatedPullRequests",
        args: &[("orderBy", "PullRequestOrder")],
        ty: "PullRequestConnection",
    },
    SchemaField {
        parent: "Commit",
        name: "tree",
        args: &[],
        ty: "Tree!",
    },
    SchemaField {
        parent: "Commit",
        name: "file",
        args: &[("path", "String!")],
        ty: "TreeEntry",
    },
    SchemaField {
        parent: "Tree",
        name: "oid",
        args: &[],
        ty: "GitObjectID!",
    },
    SchemaField {
        parent: "Tree",
        name: "entries",
        args: &[],
        ty: "[TreeEntry!]",
    },
    SchemaField {
        parent: "TreeEntry",
        name: "name",
        args: &[],
        ty: "String!",
    },
    SchemaField {
        parent: "TreeEntry",
        name: "path",
        args: &[],
        ty: "String",
    },
    SchemaField {
        parent: "TreeEntry",
        name: "oid",
        args: &[],
        ty: "GitObjectID!",
    },
    SchemaField {
        parent: "TreeEntry",
        name: "type",
        args: &[],
        ty: "String!",
    },
    SchemaField {
        parent: "TreeEntry",
        name: "mode",
        args: &[],
        ty: "Int!",
    },
    SchemaField {
        parent: "TreeEntry",
        name: "size",
        args: &[],
        ty: "Int!",
    },
    SchemaField {
        parent: "TreeEntry",
        name: "object",
        args: &[],
        ty: "GitObject",
    },
    SchemaField {
        parent: "Blob",
        name: "oid",
        args: &[],
        ty: "GitObjectID!",
    },
    SchemaField {
        parent: "Blob",
        name: "byteSize",
        args: &[],
        ty: "Int!",
    },
    SchemaField {
        parent: "Blob",
        name: "isBinary",
        args: &[],
        ty: "Boolean",
    },
    SchemaField {
        parent: "Blob",
        name: "isTruncated",
        args: &[],
        ty: "Boolean!",
    },
    SchemaField {
        parent: "Blob",
        name: "text",
        args: &[],
        ty: "String",
    },
    SchemaField {
        parent: "CommitHistoryConnection",
        name: "nodes",
        args: &[],
        ty: "[Commit]",
    },
    SchemaField {
        parent: "CommitHistoryConnection",
        name: "totalCount",
        args: &[],
        ty: "Int!",
    },
    SchemaField {
        parent: "PullRequestConnection",
        name: "nodes",
        args: &[],
        ty: "[PullRequest]",
    },
    SchemaField {
        parent: "PullRequestConnection",
        name: "totalCount",
        args: &[],
        ty: "Int!",
    },
    SchemaField {
        parent: "PullRequest",
        name: "number",
        args: &[],
        ty: "Int!",
    },
];

/// The object types that implement the `GitObject` interface.
const GIT_OBJECTS: &[&str] = &["Commit", "Tree", "Blob", "Tag"];

const SCALARS: &[&str] = &["String", "Int", "Boolean", "ID", "GitObjectID", "GitTimestamp"];
const INPUTS: &[&str] = &["CommitAuthor", "PullRequestOrder"];

fn is_connection(ty: &str) -> bool {
    ty.trim_end_matches('!').ends_with("Connection")
}

fn field_of(parent: &str, name: &str) -> Option<&'static SchemaField> {
    SCHEMA.iter().find(|f| f.parent == parent && f.name == name)
}

fn arg_type(field: &SchemaField, arg: &str) -> Option<&'static str> {
    let own = field.args.iter().find(|(n, _)| *n == arg).map(|(_, t)| *t);
    own.or_else(|| {
        is_connection(field.ty)
            .then(|| CONNECTION_ARGS.iter().find(|(n, _)| *n == arg).map(|(_, t)| *t))
            .flatten()
    })
}

/// The named type under list and non-null wrappers.
fn base(ty: &str) -> &str {
    ty.trim_end_matches('!')
        .trim_start_matches('[')
        .trim_end_matches('!')
        .trim_end_matches(']')
        .trim_end_matches('!')
}

fn is_type(name: &str) -> bool {
    name == "GitObject" || GIT_OBJECTS.contains(&name) || SCHEMA.iter().any(|f| f.parent == name)
}

/// Whether a fragment on `condition` can apply inside a selection on `parent`.
fn fragment_applies(parent: &str, condition: &str) -> bool {
    parent == condition
        || (parent == "GitObject" && GIT_OBJECTS.contains(&condition))
        || (condition == "GitObject" && GIT_OBJECTS.contains(&parent))
}

/// Whether a variable of type `var` may be passed where `arg` is expected (GraphQL's "variable
/// usage is allowed": a non-null variable fits a nullable argument, not the reverse).
fn variable_fits(var: &TypeRef, arg: &str) -> bool {
    let arg_non_null = arg.ends_with('!');
    let (var_non_null, inner) = match var {
        TypeRef::NonNull(inner) => (true, inner.as_ref()),
        other => (false, other),
    };
    let same_base = matches!(inner, TypeRef::Named(n) if n == base(arg)) && !arg.starts_with('[');
    same_base && (var_non_null || !arg_non_null)
}

// ----- validation -----------------------------------------------------------------------------

/// Every way `operation` (with `variables`) breaks the schema facts or GraphQL's rules; empty
/// when it may be executed.
pub fn validate(operation: &Operation, variables: &Map<String, Value>) -> Vec<GqlError> {
    let mut errors = Vec::new();
    let mut used: Vec<(String, Pos, &'static str)> = Vec::new();
    validate_selection(&operation.selection, "Query", &mut Vec::new(), &mut used, &mut errors);
    let op_name = match &operation.name {
        Some(n) => format!("query '{n}'"),
        None => "anonymous query".to_string(),
    };
    for (name, pos, arg_ty) in &used {
        match operation.variables.iter().find(|v| &v.name == name) {
            None => errors.push(GqlError::at(
                *pos,
                format!("Variable ${name} is used by {op_name} but not declared"),
            )),
            Some(def) if !variable_fits(&def.ty, arg_ty) => errors.push(GqlError::at(
                *pos,
                format!("Type mismatch on variable ${name} and argument ({} / {arg_ty})", def.ty),
            )),
            Some(_) => {}
        }
    }
    for def in &operation.variables {
        if !used.iter().any(|(n, ..)| n == &def.name) {
            errors.push(GqlError::at(
                def.pos,
                format!("Variable ${} is declared by {op_name} but not used", def.name),
            ));
        }
        let given = variables.get(&def.name).or(def.default.as_ref());
        if !value_fits(given, &def.ty) {
            errors.push(GqlError::at(
                def.pos,
                format!("Variable ${} of type {} was provided invalid value", def.name, def.ty),
            ));
        }
    }
    errors
}

/// Whether a variable's value fits its declared type (the scalars the fake knows).
fn value_fits(value: Option<&Value>, ty: &TypeRef) -> bool {
    match (ty, value) {
        (TypeRef::NonNull(_), None | Some(Value::Null)) => false,
        (TypeRef::NonNull(inner), v) => value_fits(v, inner),
        (_, None | Some(Value::Null)) => true,
        (TypeRef::List(inner), Some(Value::Array(items))) => items.iter().all(|i| value_fits(Some(i), inner)),
        (TypeRef::List(inner), Some(v)) => value_fits(Some(v), inner),
        (TypeRef::Named(n), Some(v)) => match n.as_str() {
            "Int" => v.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
            "Boolean" => v.is_boolean(),
            "String" | "ID" | "GitObjectID" | "GitTimestamp" => v.is_string(),
            _ => v.is_object(),
        },
    }
}

fn validate_selection(
    selection: &[Selection],
    parent: &str,
    path: &mut Vec<String>,
    used: &mut Vec<(String, Pos, &'static str)>,
    errors: &mut Vec<GqlError>,
) {
    // Each answer key's field, so that two selections under one key must be the same field.
    let mut keys: BTreeMap<&str, &Field> = BTreeMap::new();
    for item in selection {
        match item {
            Selection::Inline { on, selection } => {
                let condition = match on {
                    None => parent.to_string(),
                    Some((name, pos)) if !is_type(name) => {
                        errors.push(GqlError::at(
                            *pos,
                            format!("No such type {name}, so it can't be a fragment condition"),
                        ));
                        continue;
                    }
                    Some((name, pos)) if !fragment_applies(parent, name) => {
                        errors.push(GqlError::at(
                            *pos,
                            format!("Fragment on {name} can't be spread inside {parent}"),
                        ));
                        continue;
                    }
                    Some((name, _)) => name.clone(),
                };
                validate_selection(selection, &condition, path, used, errors);
            }
            Selection::Field(field) => {
                if let Some(first) = keys.get(field.key()) {
                    if first.name != field.name || first.args != field.args {
                        errors.push(GqlError::at(
                            field.pos,
                            format!("Field '{}' has a field conflict", field.key()),
                        ));
                    }
                }
                keys.insert(field.key(), field);
                path.push(field.key().to_string());
                validate_field(field, parent, path, used, errors);
                path.pop();
            }
        }
    }
}

fn validate_field(
    field: &Field,
    parent: &str,
    path: &mut Vec<String>,
    used: &mut Vec<(String, Pos, &'static str)>,
    errors: &mut Vec<GqlError>,
) {
    if field.name == "__typename" {
        if !field.selection.is_empty() || !field.args.is_empty() {
            errors.push(GqlError::at(
                field.pos,
                "Selections can't be made on scalars (field '__typename' returns String!)",
            ));
        }
        return;
    }
    let Some(schema) = field_of(parent, &field.name) else {
        errors.push(GqlError::at(
            field.pos,
            format!("Field '{}' doesn't exist on type '{parent}'", field.name),
        ));
        return;
    };
    for (arg, value) in &field.args {
        let Some(ty) = arg_type(schema, arg) else {
            errors.push(GqlError::at(
                field.pos,
                format!("Field '{}' doesn't accept argument '{arg}'", field.name),
            ));
            continue;
        };
        match value {
            ArgValue::Variable(name, pos) => used.push((name.clone(), *pos, ty)),
            ArgValue::Const(v) if !INPUTS.contains(&base(ty)) && !const_fits(v, ty) => errors.push(GqlError::at(
                field.pos,
                format!(
                    "Argument '{arg}' on Field '{}' has an invalid value ({v}). Expected type '{ty}'.",
                    field.name
                ),
            )),
            ArgValue::Const(_) => {}
        }
    }
    let missing: Vec<&str> = schema
        .args
        .iter()
        .filter(|(name, ty)| ty.ends_with('!') && !field.args.iter().any(|(a, _)| a == name))
        .map(|(name, _)| *name)
        .collect();
    if !missing.is_empty() {
        errors.push(GqlError::at(
            field.pos,
            format!(
                "Field '{}' is missing required arguments: {}",
                field.name,
                missing.join(", ")
            ),
        ));
    }
    if is_connection(schema.ty) {
        pagination_errors(field, path, errors);
    }
    let ty = base(schema.ty);
    let leaf = SCALARS.contains(&ty);
    match (leaf, field.selection.is_empty()) {
        (true, false) => errors.push(GqlError::at(
            field.pos,
            format!("Selections can't be made on scalars (field '{}' returns {ty} but has selections [...])", field.name),
        )),
        (false, true) => errors.push(GqlError::at(
            field.pos,
            format!("Field must have selections (field '{}' returns {ty} but has no selections. Did you mean '{} {{ ... }}'?)", field.name, field.name),
        )),
        (true, true) => {}
        (false, false) => validate_selection(&field.selection, ty, path, used, errors),
    }
}

/// Whether a constant argument fits a scalar argument type.
fn const_fits(value: &Value, ty: &str) -> bool {
    match (base(ty), value) {
        (_, Value::Null) => !ty.ends_with('!'),
        ("Int", v) => v.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
        ("Boolean", v) => v.is_boolean(),
        (_, v) => v.is_string(),
    }
}

/// GitHub's rule for connections: `first` or `last`, from 1 to 100. Checked on constants here;
/// a variable's value is checked when the query runs.
fn pagination_errors(field: &Field, path: &[String], errors: &mut Vec<GqlError>) {
    let bound = |name: &str| field.args.iter().find(|(a, _)| a == name).map(|(_, v)| v);
    let (first, last) = (bound("first"), bound("last"));
    if first.is_none() && last.is_none() {
        errors.push(GqlError {
            message: format!(
                "You must provide a `first` or `last` value to properly paginate the `{}` connection.",
                field.name
            ),
            pos: Some(field.pos),
            path: path.to_vec(),
            kind: Some("MISSING_PAGINATION_BOUNDARIES"),
        });
    }
    for (name, value) in [("first", first), ("last", last)] {
        if let Some(ArgValue::Const(v)) = value {
            if let Some(error) = page_size_error(&field.name, name, v, path, field.pos) {
                errors.push(error);
            }
        }
    }
}

/// The error GitHub gives for a page size outside 1 to 100, if `value` is one.
fn page_size_error(connection: &str, arg: &str, value: &Value, path: &[String], pos: Pos) -> Option<GqlError> {
    let n = value.as_i64()?;
    if (1..=100).contains(&n) {
        return None;
    }
    let message = if n > 100 {
        format!("Requesting {n} records on the `{connection}` connection exceeds the `{arg}` limit of 100 records.")
    } else {
        format!("`{arg}` on the `{connection}` connection cannot be less than zero or zero.")
    };
    Some(GqlError {
        message,
        pos: Some(pos),
        path: path.to_vec(),
        kind: Some("EXCESSIVE_PAGINATION"),
    })
}

// ----- execution ------------------------------------------------------------------------------

/// An object the executor walks: the query root, the repository, a git object, a connection
/// (its type and its nodes) or a pull request.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Query,
    Repository,
    /// A commit, by its sha.
    Commit(String),
    /// A tree, by its sha.
    Tree(String),
    /// A blob, by its sha.
    Blob(String),
    /// An entry of a tree: its name, path from the commit's root, object id, and whether it
    /// is a directory.
    TreeEntry {
        name: String,
        path: String,
        oid: String,
        tree: bool,
    },
    Connection(&'static str, Vec<Node>),
    /// A pull request, by its number.
    PullRequest(u64),
}

impl Node {
    fn typename(&self) -> &'static str {
        match self {
            Node::Query => "Query",
            Node::Repository => "Repository",
            Node::Commit(_) => "Commit",
            Node::Tree(_) => "Tree",
            Node::Blob(_) => "Blob",
            Node::TreeEntry { .. } => "TreeEntry",
            Node::Connection(ty, _) => ty,
            Node::PullRequest(_) => "PullRequest",
        }
    }
}

/// What a field resolved to.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved {
    Null,
    Leaf(Value),
    Node(Node),
    /// A list of objects (`Tree.entries: [TreeEntry!]`), each answered with the field's
    /// selection.
    List(Vec<Node>),
}

/// Answers fields from the fake's data. Connection fields (`nodes`, `totalCount`) and
/// `__typename` are the executor's own.
pub trait Resolver {
    /// `field` of `node`, with its arguments (variables substituted); an error becomes one of
    /// the answer's `errors` and the field `null`.
    fn resolve(&self, node: &Node, field: &str, args: &Map<String, Value>) -> Result<Resolved, GqlError>;
}

/// Runs a validated `operation`: its `data`, and the errors met on the way.
pub fn execute(
    operation: &Operation,
    variables: &Map<String, Value>,
    resolver: &dyn Resolver,
) -> (Value, Vec<GqlError>) {
    let mut errors = Vec::new();
    let mut values = variables.clone();
    for def in &operation.variables {
        if let (None, Some(default)) = (values.get(&def.name), &def.default) {
            values.insert(def.name.clone(), default.clone());
        }
    }
    let data = select(
        &operation.selection,
        &Node::Query,
        &values,
        resolver,
        &mut Vec::new(),
        &mut errors,
    );
    (data, errors)
}

fn select(
    selection: &[Selection],
    node: &Node,
    variables: &Map<String, Value>,
    resolver: &dyn Resolver,
    path: &mut Vec<String>,
    errors: &mut Vec<GqlError>,
) -> Value {
    let mut out = Map::new();
    for item in selection {
        match item {
            Selection::Inline { on, selection } => {
                let applies = on
                    .as_ref()
                    .is_none_or(|(name, _)| fragment_applies(node.typename(), name));
                if applies {
                    if let Value::Object(fields) = select(selection, node, variables, resolver, path, errors) {
                        out.extend(fields);
                    }
                }
            }
            Selection::Field(field) => {
                path.push(field.key().to_string());
                let value = field_value(field, node, variables, resolver, path, errors);
                path.pop();
                // A field selected twice (validation made sure it is the same field) answers once,
                // its selections merged.
                match out.get_mut(field.key()) {
                    Some(before) => merge(before, value),
                    None => {
                        out.insert(field.key().to_string(), value);
                    }
                }
            }
        }
    }
    Value::Object(out)
}

/// Merges the answer of a field's second selection into its first: objects key by key, lists
/// item by item.
fn merge(into: &mut Value, more: Value) {
    match (into, more) {
        (Value::Object(before), Value::Object(more)) => {
            for (key, value) in more {
                match before.get_mut(&key) {
                    Some(slot) => merge(slot, value),
                    None => {
                        before.insert(key, value);
                    }
                }
            }
        }
        (Value::Array(before), Value::Array(more)) => {
            for (slot, value) in before.iter_mut().zip(more) {
                merge(slot, value);
            }
        }
        (slot, value) => *slot = value,
    }
}

fn field_value(
    field: &Field,
    node: &Node,
    variables: &Map<String, Value>,
    resolver: &dyn Resolver,
    path: &mut Vec<String>,
    errors: &mut Vec<GqlError>,
) -> Value {
    let args: Map<String, Value> = field
        .args
        .iter()
        .map(|(name, value)| {
            let v = match value {
                ArgValue::Variable(var, _) => variables.get(var).cloned().unwrap_or(Value::Null),
                ArgValue::Const(v) => v.clone(),
            };
            (name.clone(), v)
        })
        .collect();
    for name in ["first", "last"] {
        if let Some(error) = args
            .get(name)
            .and_then(|v| page_size_error(&field.name, name, v, path, field.pos))
        {
            errors.push(error);
            return Value::Null;
        }
    }
    let resolved = match (field.name.as_str(), node) {
        ("__typename", _) => Ok(Resolved::Leaf(json!(node.typename()))),
        ("nodes", Node::Connection(_, items)) => {
            let items: Vec<Value> = items
                .iter()
                .map(|item| select(&field.selection, item, variables, resolver, path, errors))
                .collect();
            return Value::Array(items);
        }
        ("totalCount", Node::Connection(_, items)) => Ok(Resolved::Leaf(json!(items.len()))),
        (name, node) => resolver.resolve(node, name, &args),
    };
    match resolved {
        Ok(Resolved::Null) => Value::Null,
        Ok(Resolved::Leaf(v)) => v,
        Ok(Resolved::Node(child)) => select(&field.selection, &child, variables, resolver, path, errors),
        Ok(Resolved::List(items)) => Value::Array(
            items
                .iter()
                .map(|item| select(&field.selection, item, variables, resolver, path, errors))
                .collect(),
        ),
        Err(mut error) => {
            error.path = path.clone();
            error.pos = error.pos.or(Some(field.pos));
            errors.push(error);
            Value::Null
        }
    }
}

/// The page a connection argument pair asks for: the first `first` or the last `last` items.
pub fn page<T>(mut items: Vec<T>, args: &Map<String, Value>) -> Vec<T> {
    if let Some(first) = args.get("first").and_then(Value::as_u64) {
        items.truncate(first as usize);
    } else if let Some(last) = args.get("last").and_then(Value::as_u64) {
        let skip = items.len().saturating_sub(last as usize);
        items.drain(..skip);
    }
    items
}

/// A query request's answer: `{"errors": …}` when it does not parse or validate, else
/// `{"data": …}` with any `errors` met on the way; and the problems the conformance check
/// records (a query that GitHub would refuse).
pub fn answer(body: Option<&Value>, resolver: &dyn Resolver) -> (Value, Vec<String>) {
    let refused = |errors: Vec<GqlError>| {
        let problems = errors
            .iter()
            .map(|e| format!("GitHub would refuse the query: {}", e.message))
            .collect();
        (
            json!({ "errors": errors.iter().map(GqlError::to_json).collect::<Vec<_>>() }),
            problems,
        )
    };
    let Some(query) = body.and_then(|b| b.get("query")).and_then(Value::as_str) else {
        return refused(vec![GqlError::new(
            "A query attribute must be specified and must be a string.",
            None,
        )]);
    };
    let variables = match body.and_then(|b| b.get("variables")) {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(v)) => v.clone(),
        Some(_) => return refused(vec![GqlError::new("Variables are invalid JSON.", None)]),
    };
    let operation = match parse(query) {
        Ok(op) => op,
        Err(e) => return refused(vec![e]),
    };
    let invalid = validate(&operation, &variables);
    if !invalid.is_empty() {
        return refused(invalid);
    }
    let (data, errors) = execute(&operation, &variables, resolver);
    let mut answer = json!({ "data": data });
    let problems = errors
        .iter()
        .filter(|e| e.kind == Some("EXCESSIVE_PAGINATION"))
        .map(|e| format!("GitHub would refuse the query: {}", e.message))
        .collect();
    if !errors.is_empty() {
        answer["errors"] = json!(errors.iter().map(GqlError::to_json).collect::<Vec<_>>());
    }
    (answer, problems)
}
