//! Velocity template text to a syntax tree: text, references (`$a`, `$!a`, `${a}`, `$a.b`,
//! `$a.m(x)`, `$a[i]`), the directives `#set #if #elseif #else #end #foreach #break #stop #return`,
//! comments (`##`, `#* *#`), unparsed blocks (`#[[ ]]#`) and the expression language of
//! directives (literals, lists, ranges, maps, `! && || == != < <= > >= + - * / %` and their word
//! forms). Nothing else is Velocity we support; a `#` or `$` that starts nothing is text, as in
//! Velocity.

use std::fmt;

/// A parse failure, with the 1-based line and column where it happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ParseError {}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Ref(Reference),
    Set(Reference, Expr),
    If(Vec<(Expr, Vec<Node>)>, Option<Vec<Node>>),
    Foreach(String, Expr, Vec<Node>),
    Return(Option<Expr>),
    Break,
    Stop,
}

#[derive(Debug, Clone)]
pub(crate) struct Reference {
    /// `$!a`: renders nothing when null.
    pub(crate) silent: bool,
    pub(crate) name: String,
    pub(crate) path: Vec<Segment>,
    /// The reference as written, rendered when its value is null.
    pub(crate) raw: String,
    pub(crate) line: usize,
    pub(crate) column: usize,
}

#[derive(Debug, Clone)]
pub(crate) enum Segment {
    Prop(String),
    Method(String, Vec<Expr>),
    Index(Expr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A single-quoted string: no interpolation.
    Str(String),
    /// A double-quoted string: its text is a template.
    Interp(Vec<Node>),
    List(Vec<Expr>),
    Range(Box<Expr>, Box<Expr>),
    Map(Vec<(Expr, Expr)>),
    Ref(Reference),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
}

/// How deeply expressions and blocks may nest: deeper input is a parse error, never a stack overflow.
const MAX_NESTING: usize = 100;

pub(crate) fn parse(text: &str) -> Result<Vec<Node>, ParseError> {
    let mut p = Parser {
        s: text,
        pos: 0,
        depth: 0,
    };
    let (nodes, end) = p.block()?;
    match end {
        BlockEnd::Eof => Ok(nodes),
        BlockEnd::End => Err(p.error("#end without a matching #if or #foreach")),
        BlockEnd::Else | BlockEnd::ElseIf(_) => {
            Err(p.error("#else or #elseif without a matching #if"))
        }
    }
}

enum BlockEnd {
    Eof,
    End,
    Else,
    ElseIf(Expr),
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
    depth: usize,
}

fn ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        &self.s[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.rest().chars().nth(n)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.rest().starts_with(lit) {
            self.pos += lit.len();
            true
        } else {
            false
        }
    }

    fn line_col(&self, pos: usize) -> (usize, usize) {
        let before = &self.s[..pos];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        (line, column)
    }

    fn error(&self, message: impl Into<String>) -> ParseError {
        let (line, column) = self.line_col(self.pos);
        ParseError {
            line,
            column,
            message: message.into(),
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(self.error(format!("nesting deeper than {MAX_NESTING} levels")));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Nodes up to the end of input or a block keyword (`#end`, `#else`, `#elseif`).
    fn block(&mut self) -> Result<(Vec<Node>, BlockEnd), ParseError> {
        self.enter()?;
        let r = self.block_inner();
        self.leave();
        r
    }

    fn block_inner(&mut self) -> Result<(Vec<Node>, BlockEnd), ParseError> {
        let mut nodes = Vec::new();
        let mut text = String::new();
        let flush = |text: &mut String, nodes: &mut Vec<Node>| {
            if !text.is_empty() {
                nodes.push(Node::Text(std::mem::take(text)));
            }
        };
        while let Some(c) = self.peek() {
            match c {
                '#' => {
                    if self.eat("##") {
                        // A line comment takes its newline with it.
                        match self.rest().find('\n') {
                            Some(i) => self.pos += i + 1,
                            None => self.pos = self.s.len(),
                        }
                    } else if self.eat("#*") {
                        match self.rest().find("*#") {
                            Some(i) => self.pos += i + 2,
                            None => return Err(self.error("#* comment without its closing *#")),
                        }
                    } else if self.eat("#[[") {
                        match self.rest().find("]]#") {
                            Some(i) => {
                                text.push_str(&self.rest()[..i]);
                                self.pos += i + 3;
                            }
                            None => return Err(self.error("#[[ block without its closing ]]#")),
                        }
                    } else if let Some(word) = self.directive_word() {
                        let start = self.pos;
                        self.pos += word.len;
                        match word.name {
                            "end" => {
                                flush(&mut text, &mut nodes);
                                return Ok((nodes, BlockEnd::End));
                            }
                            "else" => {
                                flush(&mut text, &mut nodes);
                                return Ok((nodes, BlockEnd::Else));
                            }
                            "elseif" => {
                                let cond = self.paren_expr("#elseif")?;
                                flush(&mut text, &mut nodes);
                                return Ok((nodes, BlockEnd::ElseIf(cond)));
                            }
                            "break" => {
                                flush(&mut text, &mut nodes);
                                nodes.push(Node::Break);
                            }
                            "stop" => {
                                flush(&mut text, &mut nodes);
                                nodes.push(Node::Stop);
                            }
                            "return" => {
                                flush(&mut text, &mut nodes);
                                let save = self.pos;
                                self.skip_ws();
                                if self.peek() == Some('(') {
                                    let e = self.paren_expr("#return")?;
                                    nodes.push(Node::Return(Some(e)));
                                } else {
                                    self.pos = save;
                                    nodes.push(Node::Return(None));
                                }
                            }
                            "set" => {
                                flush(&mut text, &mut nodes);
                                nodes.push(self.set()?);
                            }
                            "if" => {
                                flush(&mut text, &mut nodes);
                                nodes.push(self.if_block()?);
                            }
                            "foreach" => {
                                flush(&mut text, &mut nodes);
                                nodes.push(self.foreach()?);
                            }
                            _ => {
                                self.pos = start;
                                return Err(self.error("unknown directive"));
                            }
                        }
                        if word.name != "else" {
                            self.gobble_line_end(start);
                        }
                    } else {
                        self.bump();
                        text.push('#');
                    }
                }
                '$' => {
                    if let Some(r) = self.reference(true)? {
                        flush(&mut text, &mut nodes);
                        nodes.push(Node::Ref(r));
                    } else {
                        self.bump();
                        text.push('$');
                    }
                }
                _ => {
                    // Copy the run of plain text up to the next `#` or `$`.
                    let rest = self.rest();
                    let n = rest.find(['#', '$']).unwrap_or(rest.len());
                    text.push_str(&rest[..n]);
                    self.pos += n;
                }
            }
        }
        flush(&mut text, &mut nodes);
        Ok((nodes, BlockEnd::Eof))
    }

    /// A directive keyword at `#`, in its `#name` or `#{name}` form.
    fn directive_word(&self) -> Option<Word> {
        const WORDS: [&str; 9] = [
            "elseif", "else", "end", "foreach", "if", "set", "return", "break", "stop",
        ];
        let rest = &self.rest()[1..];
        if let Some(inner) = rest.strip_prefix('{') {
            for w in WORDS {
                if inner.starts_with(w) && inner[w.len()..].starts_with('}') {
                    return Some(Word {
                        name: w,
                        len: w.len() + 3,
                    });
                }
            }
            return None;
        }
        for w in WORDS {
            if let Some(after) = rest.strip_prefix(w) {
                // `#ending` is text, `#end(` or `#end ` is the keyword.
                if after.chars().next().is_some_and(ident_char) {
                    continue;
                }
                return Some(Word {
                    name: w,
                    len: w.len() + 1,
                });
            }
        }
        None
    }

    /// A directive alone on its line takes the line's end with it (as Velocity 2 does), so blocks
    /// of logic do not fill the output with blank lines.
    fn gobble_line_end(&mut self, start: usize) {
        let line_start = self.s[..start].rfind('\n').map_or(0, |i| i + 1);
        if !self.s[line_start..start].trim().is_empty() {
            return;
        }
        let rest = self.rest();
        let spaces = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        let after = &rest[spaces..];
        if after.starts_with('\n') {
            self.pos += spaces + 1;
        } else if after.starts_with("\r\n") {
            self.pos += spaces + 2;
        }
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn expect(&mut self, lit: &str, what: &str) -> Result<(), ParseError> {
        self.skip_ws();
        if self.eat(lit) {
            Ok(())
        } else {
            Err(self.error(format!("expected `{lit}` {what}")))
        }
    }

    fn paren_expr(&mut self, what: &str) -> Result<Expr, ParseError> {
        self.expect("(", &format!("after {what}"))?;
        let e = self.expr()?;
        self.expect(")", &format!("to close {what}"))?;
        Ok(e)
    }

    fn set(&mut self) -> Result<Node, ParseError> {
        self.expect("(", "after #set")?;
        self.skip_ws();
        let target = match self.reference(false)? {
            Some(r) => r,
            None => return Err(self.error("#set needs a reference to assign to")),
        };
        self.expect("=", "in #set")?;
        let value = self.expr()?;
        self.expect(")", "to close #set")?;
        Ok(Node::Set(target, value))
    }

    fn if_block(&mut self) -> Result<Node, ParseError> {
        let mut branches = Vec::new();
        let mut cond = self.paren_expr("#if")?;
        self.gobble_after_paren();
        loop {
            let (body, end) = self.block()?;
            branches.push((cond, body));
            match end {
                BlockEnd::End => return Ok(Node::If(branches, None)),
                BlockEnd::ElseIf(c) => {
                    cond = c;
                    self.gobble_after_paren();
                }
                BlockEnd::Else => {
                    self.gobble_after_paren();
                    let (body, end) = self.block()?;
                    return match end {
                        BlockEnd::End => Ok(Node::If(branches, Some(body))),
                        BlockEnd::Eof => Err(self.error("#if without its #end")),
                        _ => Err(self.error("#else followed by another #else or #elseif")),
                    };
                }
                BlockEnd::Eof => return Err(self.error("#if without its #end")),
            }
        }
    }

    /// After `#if(...)`, `#elseif(...)` or `#else` ending its line, the newline belongs to the directive.
    fn gobble_after_paren(&mut self) {
        let rest = self.rest();
        let spaces = rest.len() - rest.trim_start_matches([' ', '\t']).len();
        let after = &rest[spaces..];
        if after.starts_with('\n') {
            self.pos += spaces + 1;
        } else if after.starts_with("\r\n") {
            self.pos += spaces + 2;
        }
    }

    fn foreach(&mut self) -> Result<Node, ParseError> {
        self.expect("(", "after #foreach")?;
        self.skip_ws();
        let var = match self.reference(false)? {
            Some(r) if r.path.is_empty() => r.name,
            _ => return Err(self.error("#foreach needs a plain $variable")),
        };
        self.skip_ws();
        if !self.eat("in") {
            return Err(self.error("expected `in` in #foreach"));
        }
        let iter = self.expr()?;
        self.expect(")", "to close #foreach")?;
        self.gobble_after_paren();
        let (body, end) = self.block()?;
        match end {
            BlockEnd::End => Ok(Node::Foreach(var, iter, body)),
            BlockEnd::Eof => Err(self.error("#foreach without its #end")),
            _ => Err(self.error("#else inside #foreach without an #if")),
        }
    }

    /// A reference at `$`, or `None` (text) when `$` starts none. `in_text`: a `.` not followed
    /// by a name ends the reference, as Velocity renders `$a.` as `$a` then `.`.
    fn reference(&mut self, in_text: bool) -> Result<Option<Reference>, ParseError> {
        let start = self.pos;
        let rest = self.rest();
        if !rest.starts_with('$') {
            return Ok(None);
        }
        let mut i = 1;
        let silent = rest[i..].starts_with('!');
        if silent {
            i += 1;
        }
        let braced = rest[i..].starts_with('{');
        if braced {
            i += 1;
        }
        if !rest[i..].chars().next().is_some_and(ident_start) {
            return Ok(None);
        }
        self.pos += i;
        let name = self.ident();
        let (line, column) = self.line_col(start);
        let mut path = Vec::new();
        self.enter()?;
        let r = self.path(&mut path, in_text);
        self.leave();
        r?;
        if braced && !self.eat("}") {
            if in_text {
                // `${a` without `}` is text in Velocity.
                self.pos = start;
                return Ok(None);
            }
            return Err(self.error("`${` reference without its `}`"));
        }
        Ok(Some(Reference {
            silent,
            name,
            path,
            raw: self.s[start..self.pos].to_string(),
            line,
            column,
        }))
    }

    fn path(&mut self, path: &mut Vec<Segment>, in_text: bool) -> Result<(), ParseError> {
        loop {
            let rest = self.rest();
            if rest.starts_with('.') && rest[1..].chars().next().is_some_and(ident_start) {
                self.pos += 1;
                let name = self.ident();
                if self.peek() == Some('(') {
                    self.pos += 1;
                    let args = self.args(')')?;
                    path.push(Segment::Method(name, args));
                } else {
                    path.push(Segment::Prop(name));
                }
            } else if rest.starts_with('[') {
                let save = self.pos;
                self.pos += 1;
                match self.expr() {
                    Ok(e) => {
                        self.skip_ws();
                        if self.eat("]") {
                            path.push(Segment::Index(e));
                        } else if in_text {
                            self.pos = save;
                            return Ok(());
                        } else {
                            return Err(self.error("expected `]` after an index"));
                        }
                    }
                    Err(e) if !in_text => return Err(e),
                    Err(_) => {
                        self.pos = save;
                        return Ok(());
                    }
                }
            } else {
                return Ok(());
            }
        }
    }

    fn ident(&mut self) -> String {
        let rest = self.rest();
        let n = rest.find(|c: char| !ident_char(c)).unwrap_or(rest.len());
        self.pos += n;
        rest[..n].to_string()
    }

    /// Comma-separated expressions up to `close` (consumed).
    fn args(&mut self, close: char) -> Result<Vec<Expr>, ParseError> {
        let mut args = Vec::new();
        self.skip_ws();
        if self.peek() == Some(close) {
            self.bump();
            return Ok(args);
        }
        loop {
            args.push(self.expr()?);
            self.skip_ws();
            match self.bump() {
                Some(',') => continue,
                Some(c) if c == close => return Ok(args),
                _ => return Err(self.error(format!("expected `,` or `{close}`"))),
            }
        }
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        self.enter()?;
        let r = self.or();
        self.leave();
        r
    }

    fn word_op(&mut self, word: &str) -> bool {
        let rest = self.rest();
        if rest.starts_with(word) && !rest[word.len()..].chars().next().is_some_and(ident_char) {
            self.pos += word.len();
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.and()?;
        loop {
            self.skip_ws();
            if self.eat("||") || self.word_op("or") {
                let r = self.and()?;
                l = Expr::Bin(BinOp::Or, Box::new(l), Box::new(r));
            } else {
                return Ok(l);
            }
        }
    }

    fn and(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.equality()?;
        loop {
            self.skip_ws();
            if self.eat("&&") || self.word_op("and") {
                let r = self.equality()?;
                l = Expr::Bin(BinOp::And, Box::new(l), Box::new(r));
            } else {
                return Ok(l);
            }
        }
    }

    fn equality(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.relational()?;
        loop {
            self.skip_ws();
            let op = if self.eat("==") || self.word_op("eq") {
                BinOp::Eq
            } else if self.eat("!=") || self.word_op("ne") {
                BinOp::Ne
            } else {
                return Ok(l);
            };
            let r = self.relational()?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
    }

    fn relational(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.additive()?;
        loop {
            self.skip_ws();
            let op = if self.eat("<=") || self.word_op("le") {
                BinOp::Le
            } else if self.eat(">=") || self.word_op("ge") {
                BinOp::Ge
            } else if self.eat("<") || self.word_op("lt") {
                BinOp::Lt
            } else if self.eat(">") || self.word_op("gt") {
                BinOp::Gt
            } else {
                return Ok(l);
            };
            let r = self.additive()?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
    }

    fn additive(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.multiplicative()?;
        loop {
            self.skip_ws();
            let op = if self.eat("+") {
                BinOp::Add
            } else if self.eat("-") {
                BinOp::Sub
            } else {
                return Ok(l);
            };
            let r = self.multiplicative()?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
    }

    fn multiplicative(&mut self) -> Result<Expr, ParseError> {
        let mut l = self.unary()?;
        loop {
            self.skip_ws();
            let op = if self.eat("*") {
                BinOp::Mul
            } else if self.eat("/") {
                BinOp::Div
            } else if self.eat("%") {
                BinOp::Mod
            } else {
                return Ok(l);
            };
            let r = self.unary()?;
            l = Expr::Bin(op, Box::new(l), Box::new(r));
        }
    }

    fn unary(&mut self) -> Result<Expr, ParseError> {
        self.skip_ws();
        self.enter()?;
        let r = if self.rest().starts_with('!') && !self.rest().starts_with("!=") {
            self.pos += 1;
            self.unary().map(|e| Expr::Not(Box::new(e)))
        } else if self.word_op("not") {
            self.unary().map(|e| Expr::Not(Box::new(e)))
        } else if self.rest().starts_with('-')
            && !self.peek_at(1).is_some_and(|c| c.is_ascii_digit())
        {
            self.pos += 1;
            self.unary().map(|e| Expr::Neg(Box::new(e)))
        } else {
            self.primary()
        };
        self.leave();
        r
    }

    fn primary(&mut self) -> Result<Expr, ParseError> {
        self.skip_ws();
        let c = match self.peek() {
            Some(c) => c,
            None => return Err(self.error("expected an expression, found the end")),
        };
        match c {
            '(' => {
                self.pos += 1;
                let e = self.expr()?;
                self.expect(")", "to close `(`")?;
                Ok(e)
            }
            '$' => match self.reference(false)? {
                Some(r) => Ok(Expr::Ref(r)),
                None => Err(self.error("`$` without a name")),
            },
            '"' => {
                self.pos += 1;
                let body = self.string_body('"')?;
                let mut inner = Parser {
                    s: &body,
                    pos: 0,
                    depth: self.depth,
                };
                let (nodes, end) = inner.block().map_err(|mut e| {
                    let (line, column) = self.line_col(self.pos);
                    e.line = line;
                    e.column = column;
                    e
                })?;
                if !matches!(end, BlockEnd::Eof) {
                    return Err(self.error("a string holds an unmatched #end or #else"));
                }
                Ok(Expr::Interp(nodes))
            }
            '\'' => {
                self.pos += 1;
                Ok(Expr::Str(self.string_body('\'')?))
            }
            '[' => {
                self.pos += 1;
                self.skip_ws();
                if self.eat("]") {
                    return Ok(Expr::List(Vec::new()));
                }
                let first = self.expr()?;
                self.skip_ws();
                if self.eat("..") {
                    let last = self.expr()?;
                    self.expect("]", "to close a range")?;
                    return Ok(Expr::Range(Box::new(first), Box::new(last)));
                }
                let mut items = vec![first];
                loop {
                    self.skip_ws();
                    match self.bump() {
                        Some(',') => items.push(self.expr()?),
                        Some(']') => return Ok(Expr::List(items)),
                        _ => return Err(self.error("expected `,` or `]` in a list")),
                    }
                }
            }
            '{' => {
                self.pos += 1;
                let mut entries = Vec::new();
                self.skip_ws();
                if self.eat("}") {
                    return Ok(Expr::Map(entries));
                }
                loop {
                    let k = self.expr()?;
                    self.expect(":", "after a map key")?;
                    let v = self.expr()?;
                    entries.push((k, v));
                    self.skip_ws();
                    match self.bump() {
                        Some(',') => continue,
                        Some('}') => return Ok(Expr::Map(entries)),
                        _ => return Err(self.error("expected `,` or `}` in a map")),
                    }
                }
            }
            c if c.is_ascii_digit() || c == '-' => self.number(),
            _ => {
                if self.word_op("true") {
                    Ok(Expr::Bool(true))
                } else if self.word_op("false") {
                    Ok(Expr::Bool(false))
                } else if self.word_op("null") {
                    Ok(Expr::Null)
                } else {
                    Err(self.error(format!("unexpected `{c}` in an expression")))
                }
            }
        }
    }

    fn number(&mut self) -> Result<Expr, ParseError> {
        let rest = self.rest();
        let mut n = usize::from(rest.starts_with('-'));
        n += rest[n..]
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len() - n);
        let mut float = false;
        // `1..3` is a range, not the decimal `1.`.
        if rest[n..].starts_with('.') && rest[n + 1..].starts_with(|c: char| c.is_ascii_digit()) {
            float = true;
            n += 1;
            n += rest[n..]
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len() - n);
        }
        let text = &rest[..n];
        let e = if float {
            text.parse::<f64>().map(Expr::Float).ok()
        } else {
            text.parse::<i64>().map(Expr::Int).ok()
        };
        match e {
            Some(e) => {
                self.pos += n;
                Ok(e)
            }
            None => Err(self.error(format!("`{text}` is not a number Velocity can hold"))),
        }
    }

    /// The text of a string literal up to its closing quote; a doubled quote is one quote.
    fn string_body(&mut self, quote: char) -> Result<String, ParseError> {
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return Err(self.error("a string without its closing quote")),
                Some(c) if c == quote => {
                    if self.peek() == Some(quote) {
                        self.bump();
                        out.push(quote);
                    } else {
                        return Ok(out);
                    }
                }
                Some(c) => out.push(c),
            }
        }
    }
}

struct Word {
    name: &'static str,
    len: usize,
}
