//! The GraphQL the local stack reads: operations sent to `POST /graphql` and in realtime `start`
//! messages, and the rendered schema's object types with their auth directives. A small
//! recursive-descent parser for the subset AppSync clients send (named or anonymous `query`,
//! `mutation`, `subscription`; variables with defaults; arguments of every literal kind; nested
//! selection sets with aliases), instead of a parser crate: the rendered schema and groupcast's and
//! Amplify's operations need nothing more, and what it does not support (fragments, field
//! directives) is refused by name rather than half-understood.
//!
//! Grammar: <https://spec.graphql.org/October2021/#sec-Language>.

use serde_json::{Map, Value as Json};
use std::collections::BTreeMap;

/// A parse error, with the 1-based position AppSync reports in `locations`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

/// How deep lists, objects, types and selection sets may nest: bounded, so that a hostile
/// document (`[[[[…`) is an error, not a stack overflow.
const MAX_DEPTH: usize = 32;

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Punct(char),
    Spread,
    Name(String),
    Int(String),
    Float(String),
    Str(String),
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    line: usize,
    column: usize,
}

fn tokenize(src: &str) -> Result<Vec<Token>, SyntaxError> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let (mut i, mut line, mut col) = (0usize, 1usize, 1usize);
    let err = |m: String, line, column| SyntaxError {
        message: m,
        line,
        column,
    };
    while i < chars.len() {
        let c = chars[i];
        let (tl, tc) = (line, col);
        match c {
            '\n' => {
                i += 1;
                line += 1;
                col = 1;
            }
            ' ' | '\t' | '\r' | ',' | '\u{feff}' => {
                i += 1;
                col += 1;
            }
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '!' | '$' | '&' | '(' | ')' | ':' | '=' | '@' | '[' | ']' | '{' | '|' | '}' => {
                out.push(Token {
                    tok: Tok::Punct(c),
                    line: tl,
                    column: tc,
                });
                i += 1;
                col += 1;
            }
            '.' => {
                if chars.get(i + 1) == Some(&'.') && chars.get(i + 2) == Some(&'.') {
                    out.push(Token {
                        tok: Tok::Spread,
                        line: tl,
                        column: tc,
                    });
                    i += 3;
                    col += 3;
                } else {
                    return Err(err("unexpected character '.'".into(), tl, tc));
                }
            }
            '"' => {
                let block = chars.get(i + 1) == Some(&'"') && chars.get(i + 2) == Some(&'"');
                let mut s = String::new();
                if block {
                    i += 3;
                    col += 3;
                    loop {
                        if i >= chars.len() {
                            return Err(err("unterminated block string".into(), tl, tc));
                        }
                        if chars[i] == '"'
                            && chars.get(i + 1) == Some(&'"')
                            && chars.get(i + 2) == Some(&'"')
                        {
                            i += 3;
                            col += 3;
                            break;
                        }
                        if chars[i] == '\n' {
                            line += 1;
                            col = 1;
                        } else {
                            col += 1;
                        }
                        s.push(chars[i]);
                        i += 1;
                    }
                } else {
                    i += 1;
                    col += 1;
                    loop {
                        let Some(&ch) = chars.get(i) else {
                            return Err(err("unterminated string".into(), tl, tc));
                        };
                        i += 1;
                        col += 1;
                        match ch {
                            '"' => break,
                            '\n' => return Err(err("unterminated string".into(), tl, tc)),
                            '\\' => {
                                let Some(&e) = chars.get(i) else {
                                    return Err(err("unterminated string".into(), tl, tc));
                                };
                                i += 1;
                                col += 1;
                                match e {
                                    '"' => s.push('"'),
                                    '\\' => s.push('\\'),
                                    '/' => s.push('/'),
                                    'b' => s.push('\u{8}'),
                                    'f' => s.push('\u{c}'),
                                    'n' => s.push('\n'),
                                    'r' => s.push('\r'),
                                    't' => s.push('\t'),
                                    'u' => {
                                        let hex: String = chars.iter().skip(i).take(4).collect();
                                        let code = (hex.len() == 4)
                                            .then(|| u32::from_str_radix(&hex, 16).ok())
                                            .flatten()
                                            .and_then(char::from_u32)
                                            .ok_or_else(|| {
                                                err(
                                                    format!("bad unicode escape \\u{hex}"),
                                                    line,
                                                    col,
                                                )
                                            })?;
                                        s.push(code);
                                        i += 4;
                                        col += 4;
                                    }
                                    other => {
                                        return Err(err(
                                            format!("bad escape \\{other}"),
                                            line,
                                            col,
                                        ));
                                    }
                                }
                            }
                            other => s.push(other),
                        }
                    }
                }
                out.push(Token {
                    tok: Tok::Str(s),
                    line: tl,
                    column: tc,
                });
            }
            c if c == '-' || c.is_ascii_digit() => {
                let start = i;
                i += 1;
                let mut float = false;
                while i < chars.len()
                    && (chars[i].is_ascii_digit()
                        || matches!(chars[i], '.' | 'e' | 'E' | '+' | '-'))
                {
                    float |= matches!(chars[i], '.' | 'e' | 'E');
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                col += i - start;
                let ok = if float {
                    text.parse::<f64>().is_ok()
                } else {
                    text.parse::<i64>().is_ok()
                };
                if !ok {
                    return Err(err(format!("bad number {text}"), tl, tc));
                }
                out.push(Token {
                    tok: if float {
                        Tok::Float(text)
                    } else {
                        Tok::Int(text)
                    },
                    line: tl,
                    column: tc,
                });
            }
            c if c == '_' || c.is_ascii_alphabetic() => {
                let start = i;
                while i < chars.len() && (chars[i] == '_' || chars[i].is_ascii_alphanumeric()) {
                    i += 1;
                }
                col += i - start;
                out.push(Token {
                    tok: Tok::Name(chars[start..i].iter().collect()),
                    line: tl,
                    column: tc,
                });
            }
            other => return Err(err(format!("unexpected character {other:?}"), tl, tc)),
        }
    }
    out.push(Token {
        tok: Tok::End,
        line,
        column: col,
    });
    Ok(out)
}

/// An argument or default value, before variables are substituted.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Var(String),
    Const(Json),
    List(Vec<Value>),
    Object(Vec<(String, Value)>),
}

impl Value {
    /// The JSON value, with `$x` replaced from `vars` (a missing variable is null, as GraphQL
    /// treats an unprovided nullable variable).
    pub fn resolve(&self, vars: &Map<String, Json>) -> Json {
        match self {
            Value::Var(v) => vars.get(v).cloned().unwrap_or(Json::Null),
            Value::Const(j) => j.clone(),
            Value::List(l) => Json::Array(l.iter().map(|v| v.resolve(vars)).collect()),
            Value::Object(o) => Json::Object(
                o.iter()
                    .map(|(k, v)| (k.clone(), v.resolve(vars)))
                    .collect(),
            ),
        }
    }
}

/// `query`, `mutation` or `subscription`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Query,
    Mutation,
    Subscription,
}

impl OpKind {
    /// The root type's name in the schema.
    pub fn type_name(self) -> &'static str {
        match self {
            OpKind::Query => "Query",
            OpKind::Mutation => "Mutation",
            OpKind::Subscription => "Subscription",
        }
    }
}

/// One field of a selection set.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub alias: Option<String>,
    pub name: String,
    pub args: Vec<(String, Value)>,
    pub selection: Vec<Field>,
    pub line: usize,
    pub column: usize,
}

impl Field {
    /// The key the field has in the response.
    pub fn key(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

/// One operation of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub kind: OpKind,
    pub name: Option<String>,
    /// Variable name → default value.
    pub variables: Vec<(String, Option<Value>)>,
    pub fields: Vec<Field>,
}

impl Operation {
    /// The variables the request sent, with declared defaults filled in.
    pub fn variables_with_defaults(&self, sent: &Map<String, Json>) -> Map<String, Json> {
        let mut vars = sent.clone();
        for (name, default) in &self.variables {
            if !vars.contains_key(name)
                && let Some(d) = default
            {
                vars.insert(name.clone(), d.resolve(&Map::new()));
            }
        }
        vars
    }
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }
    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }
    fn fail<T>(&self, message: impl Into<String>) -> Result<T, SyntaxError> {
        let t = self.peek();
        Err(SyntaxError {
            message: message.into(),
            line: t.line,
            column: t.column,
        })
    }
    fn is(&self, c: char) -> bool {
        self.peek().tok == Tok::Punct(c)
    }
    fn eat(&mut self, c: char) -> bool {
        if self.is(c) {
            self.next();
            true
        } else {
            false
        }
    }
    fn expect(&mut self, c: char) -> Result<(), SyntaxError> {
        if self.eat(c) {
            Ok(())
        } else {
            self.fail(format!(
                "expected '{c}', found {}",
                describe(&self.peek().tok)
            ))
        }
    }
    fn name(&mut self) -> Result<String, SyntaxError> {
        match self.peek().tok.clone() {
            Tok::Name(n) => {
                self.next();
                Ok(n)
            }
            other => self.fail(format!("expected a name, found {}", describe(&other))),
        }
    }

    fn value(&mut self, constant: bool) -> Result<Value, SyntaxError> {
        self.value_at(constant, 0)
    }

    fn value_at(&mut self, constant: bool, depth: usize) -> Result<Value, SyntaxError> {
        if depth > MAX_DEPTH {
            return self.fail(format!(
                "a value is nested more than {MAX_DEPTH} levels deep"
            ));
        }
        let t = self.peek().tok.clone();
        Ok(match t {
            Tok::Punct('$') if !constant => {
                self.next();
                Value::Var(self.name()?)
            }
            Tok::Punct('[') => {
                self.next();
                let mut items = Vec::new();
                while !self.eat(']') {
                    if self.peek().tok == Tok::End {
                        return self.fail("unterminated list");
                    }
                    items.push(self.value_at(constant, depth + 1)?);
                }
                Value::List(items)
            }
            Tok::Punct('{') => {
                self.next();
                let mut fields = Vec::new();
                while !self.eat('}') {
                    let k = self.name()?;
                    self.expect(':')?;
                    fields.push((k, self.value_at(constant, depth + 1)?));
                }
                Value::Object(fields)
            }
            Tok::Int(s) => {
                self.next();
                Value::Const(s.parse::<i64>().map(Json::from).unwrap_or(Json::Null))
            }
            Tok::Float(s) => {
                self.next();
                Value::Const(
                    s.parse::<f64>()
                        .ok()
                        .and_then(serde_json::Number::from_f64)
                        .map_or(Json::Null, Json::Number),
                )
            }
            Tok::Str(s) => {
                self.next();
                Value::Const(Json::String(s))
            }
            Tok::Name(n) => {
                self.next();
                Value::Const(match n.as_str() {
                    "true" => Json::Bool(true),
                    "false" => Json::Bool(false),
                    "null" => Json::Null,
                    // An enum value: AppSync hands it to resolvers as its name.
                    _ => Json::String(n),
                })
            }
            other => return self.fail(format!("expected a value, found {}", describe(&other))),
        })
    }

    /// `[String!]!` → `String`.
    fn type_ref(&mut self) -> Result<String, SyntaxError> {
        self.type_ref_at(0)
    }

    fn type_ref_at(&mut self, depth: usize) -> Result<String, SyntaxError> {
        if depth > MAX_DEPTH {
            return self.fail(format!(
                "a type is nested more than {MAX_DEPTH} levels deep"
            ));
        }
        let base = if self.eat('[') {
            let inner = self.type_ref_at(depth + 1)?;
            self.expect(']')?;
            inner
        } else {
            self.name()?
        };
        self.eat('!');
        Ok(base)
    }

    fn selection_set(&mut self, depth: usize) -> Result<Vec<Field>, SyntaxError> {
        if depth > MAX_DEPTH {
            return self.fail(format!(
                "the selection set is nested more than {MAX_DEPTH} levels deep"
            ));
        }
        self.expect('{')?;
        let mut fields = Vec::new();
        while !self.eat('}') {
            if self.peek().tok == Tok::Spread {
                return self.fail("fragments are not supported by the local stack");
            }
            let Token { line, column, .. } = self.peek().clone();
            let first = self.name()?;
            let (alias, name) = if self.eat(':') {
                (Some(first), self.name()?)
            } else {
                (None, first)
            };
            let mut args = Vec::new();
            if self.eat('(') {
                while !self.eat(')') {
                    let k = self.name()?;
                    self.expect(':')?;
                    args.push((k, self.value(false)?));
                }
            }
            if self.is('@') {
                return self.fail(
                    "field directives (@include, @skip) are not supported by the local stack",
                );
            }
            let selection = if self.is('{') {
                self.selection_set(depth + 1)?
            } else {
                Vec::new()
            };
            fields.push(Field {
                alias,
                name,
                args,
                selection,
                line,
                column,
            });
        }
        if fields.is_empty() {
            return self.fail("a selection set selects at least one field");
        }
        Ok(fields)
    }

    fn operation(&mut self) -> Result<Operation, SyntaxError> {
        if self.is('{') {
            return Ok(Operation {
                kind: OpKind::Query,
                name: None,
                variables: Vec::new(),
                fields: self.selection_set(0)?,
            });
        }
        let kind = match self.name()?.as_str() {
            "query" => OpKind::Query,
            "mutation" => OpKind::Mutation,
            "subscription" => OpKind::Subscription,
            "fragment" => return self.fail("fragments are not supported by the local stack"),
            other => return self.fail(format!("expected an operation, found {other:?}")),
        };
        let name = match self.peek().tok {
            Tok::Name(_) => Some(self.name()?),
            _ => None,
        };
        let mut variables = Vec::new();
        if self.eat('(') {
            while !self.eat(')') {
                self.expect('$')?;
                let v = self.name()?;
                self.expect(':')?;
                self.type_ref()?;
                let default = if self.eat('=') {
                    Some(self.value(true)?)
                } else {
                    None
                };
                variables.push((v, default));
            }
        }
        if self.is('@') {
            return self.fail("operation directives are not supported by the local stack");
        }
        Ok(Operation {
            kind,
            name,
            variables,
            fields: self.selection_set(0)?,
        })
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Punct(c) => format!("'{c}'"),
        Tok::Spread => "'...'".into(),
        Tok::Name(n) => format!("{n:?}"),
        Tok::Int(s) | Tok::Float(s) => s.clone(),
        Tok::Str(_) => "a string".into(),
        Tok::End => "the end of the document".into(),
    }
}

/// Every operation of a request's `query` text.
pub fn document(src: &str) -> Result<Vec<Operation>, SyntaxError> {
    let mut p = Parser {
        toks: tokenize(src)?,
        pos: 0,
    };
    let mut ops = Vec::new();
    while p.peek().tok != Tok::End {
        ops.push(p.operation()?);
    }
    if ops.is_empty() {
        return p.fail("the document holds no operation");
    }
    Ok(ops)
}

/// A directive as written in the schema: `@aws_subscribe(mutations: ["publish"])`.
#[derive(Debug, Clone, PartialEq)]
pub struct Directive {
    pub name: String,
    pub args: BTreeMap<String, Json>,
}

/// A field of an object type in the schema.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldDef {
    /// The named type it returns (`Message` for `[Message!]!`).
    pub type_name: String,
    /// Argument name → its named type.
    pub args: BTreeMap<String, String>,
    pub directives: Vec<Directive>,
}

/// An object type in the schema.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TypeDef {
    pub directives: Vec<Directive>,
    pub fields: BTreeMap<String, FieldDef>,
}

/// The object types of an SDL document (other definitions are skipped).
pub fn schema(src: &str) -> Result<BTreeMap<String, TypeDef>, SyntaxError> {
    let mut p = Parser {
        toks: tokenize(src)?,
        pos: 0,
    };
    let mut types = BTreeMap::new();
    while p.peek().tok != Tok::End {
        if matches!(p.peek().tok, Tok::Str(_)) {
            p.next(); // a description
            continue;
        }
        let keyword = p.name()?;
        match keyword.as_str() {
            "type" | "interface" | "input" => {
                let name = p.name()?;
                if p.peek().tok == Tok::Name("implements".into()) {
                    p.next();
                    p.eat('&');
                    while let Tok::Name(_) = p.peek().tok {
                        p.next();
                        p.eat('&');
                    }
                }
                let type_directives = directives(&mut p)?;
                let mut fields = BTreeMap::new();
                if p.eat('{') {
                    while !p.eat('}') {
                        if matches!(p.peek().tok, Tok::Str(_)) {
                            p.next();
                            continue;
                        }
                        let f = p.name()?;
                        let mut args = BTreeMap::new();
                        if p.eat('(') {
                            while !p.eat(')') {
                                if matches!(p.peek().tok, Tok::Str(_)) {
                                    p.next();
                                    continue;
                                }
                                let a = p.name()?;
                                p.expect(':')?;
                                args.insert(a, p.type_ref()?);
                                if p.eat('=') {
                                    p.value(true)?;
                                }
                                directives(&mut p)?;
                            }
                        }
                        p.expect(':')?;
                        let type_name = p.type_ref()?;
                        let d = directives(&mut p)?;
                        fields.insert(
                            f,
                            FieldDef {
                                type_name,
                                args,
                                directives: d,
                            },
                        );
                    }
                }
                types.insert(
                    name,
                    TypeDef {
                        directives: type_directives,
                        fields,
                    },
                );
            }
            "schema" | "enum" | "scalar" | "union" | "directive" | "extend" => {
                // Skipped: up to the end of a braced body, or the next definition.
                let mut depth = 0usize;
                loop {
                    match p.peek().tok.clone() {
                        Tok::End => break,
                        Tok::Punct('{') | Tok::Punct('(') => depth += 1,
                        Tok::Punct('}') | Tok::Punct(')') => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 && p.is('}') {
                                p.next();
                                break;
                            }
                        }
                        Tok::Name(n)
                            if depth == 0
                                && matches!(
                                    n.as_str(),
                                    "type"
                                        | "interface"
                                        | "input"
                                        | "schema"
                                        | "enum"
                                        | "scalar"
                                        | "union"
                                        | "directive"
                                )
                                && p.pos > 0 =>
                        {
                            break;
                        }
                        _ => {}
                    }
                    p.next();
                }
            }
            other => return p.fail(format!("unexpected {other:?} in the schema")),
        }
    }
    Ok(types)
}

fn directives(p: &mut Parser) -> Result<Vec<Directive>, SyntaxError> {
    let mut out = Vec::new();
    while p.eat('@') {
        let name = p.name()?;
        let mut args = BTreeMap::new();
        if p.eat('(') {
            while !p.eat(')') {
                let k = p.name()?;
                p.expect(':')?;
                args.insert(k, p.value(true)?.resolve(&Map::new()));
            }
        }
        out.push(Directive { name, args });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn groupcasts_publish_mutation_parses_with_its_variables_and_selection() {
        let ops = document(groupcast::graphql::PUBLISH_MUTATION).unwrap();
        assert_eq!(ops.len(), 1);
        let op = &ops[0];
        assert_eq!(op.kind, OpKind::Mutation);
        assert_eq!(op.name.as_deref(), Some("Publish"));
        assert_eq!(op.fields[0].name, "publish");
        let vars = json!({"topic": "t", "groups": ["a"]});
        let args: Vec<(String, Json)> = op.fields[0]
            .args
            .iter()
            .map(|(k, v)| (k.clone(), v.resolve(vars.as_object().unwrap())))
            .collect();
        assert_eq!(args[0], ("topic".into(), json!("t")));
        assert_eq!(args[3], ("uuid".into(), Json::Null));
        let sel: Vec<&str> = op.fields[0].selection.iter().map(|f| f.key()).collect();
        assert_eq!(sel, ["topic", "data", "groups", "uuid"]);
    }

    #[test]
    fn literals_aliases_defaults_and_comments_parse() {
        let ops = document(
            "# a comment\nsubscription S($p: String = \"x\\u0041\") { s: subscribe(prefix: $p, onlyGroups: [\"a\", \"b\"], n: -1.5e1, o: {k: true, e: RED}) { __typename uuid } }",
        )
        .unwrap();
        let op = &ops[0];
        let vars = op.variables_with_defaults(&Map::new());
        assert_eq!(vars["p"], json!("xA"));
        let f = &op.fields[0];
        assert_eq!(f.key(), "s");
        assert_eq!(f.line, 2);
        let resolved: Vec<Json> = f.args.iter().map(|(_, v)| v.resolve(&vars)).collect();
        assert_eq!(
            resolved,
            [
                json!("xA"),
                json!(["a", "b"]),
                json!(-15.0),
                json!({"k": true, "e": "RED"})
            ]
        );
    }

    #[test]
    fn broken_and_unsupported_documents_are_errors_with_a_position_never_a_panic() {
        for bad in [
            "",
            "mutation {",
            "mutation { publish(topic: ) { topic } }",
            "{ a { ...F } }",
            "fragment F on T { a }",
            "{ a @skip(if: true) }",
            "{ a(x: \"unterminated) }",
            "{ a(x: 1.2.3) }",
            "query Q($a String) { a }",
            "{ }",
            "\u{0}",
            &"{ a ".repeat(100),
            &format!("{{ a(x: {}) }}", "[".repeat(100_000)),
            &format!("{{ a(x: {}) }}", "{k: ".repeat(100_000)),
            &format!("query Q($v: {}String) {{ a }}", "[".repeat(100_000)),
        ] {
            let e = document(bad).unwrap_err();
            assert!(e.line >= 1 && e.column >= 1, "{bad}: {e:?}");
        }
    }

    #[test]
    fn the_rendered_schemas_types_fields_and_directives_are_read() {
        let sdl = r#"
schema { query: Query mutation: Mutation subscription: Subscription }
"""A message"""
type Message @aws_iam @aws_cognito_user_pools { topic: String! groups: [String!]! }
scalar AWSJSON
type Mutation {
  # IAM only
  publish(topic: String!, groups: [String!]!, uuid: String = null): Message @aws_iam
}
type Subscription {
  subscribe(prefix: String, onlyGroups: [String!]): Message
    @aws_subscribe(mutations: ["publish"]) @aws_cognito_user_pools
}"#;
        let types = schema(sdl).unwrap();
        assert_eq!(types["Message"].directives.len(), 2);
        assert_eq!(
            types["Mutation"].fields["publish"].directives[0].name,
            "aws_iam"
        );
        let sub = &types["Subscription"].fields["subscribe"];
        assert_eq!(sub.type_name, "Message");
        assert_eq!(sub.args["onlyGroups"], "String");
        assert_eq!(sub.directives[0].args["mutations"], json!(["publish"]));
    }
}
