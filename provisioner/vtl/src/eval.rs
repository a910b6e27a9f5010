//! Evaluates a parsed template against a [`Context`]: variables, references and their methods,
//! directives, `$util`, `$ctx`/`$context` and `$extensions`. Every run is bounded (steps, output,
//! collection sizes), so hostile templates or inputs end in an error, never a hang or a panic.

use std::collections::HashMap;
use std::rc::Rc;

use serde_json::Value as Json;

use crate::parser::{BinOp, Expr, Node, Reference, Segment};
use crate::value::{Value, byte_offset, java_len, unit_index};
use crate::{Context, Extensions, TemplateError};

/// Steps (nodes, loop turns, calls) one evaluation may take.
const MAX_STEPS: usize = 2_000_000;
/// Bytes of output or of one string value.
const MAX_TEXT: usize = 8 * 1024 * 1024;
/// Elements of one list or map.
const MAX_COLLECTION: usize = 1_000_000;

/// The `$util` functions we implement, by name (`$util.NAME(...)`). [`crate::unsupported`] checks
/// templates against this list; [`Eval::util`] is its implementation.
pub(crate) const UTIL_FUNCTIONS: &[&str] = &[
    "qr",
    "quiet",
    "toJson",
    "parseJson",
    "autoId",
    "error",
    "appendError",
    "unauthorized",
    "validate",
    "isNull",
    "isNullOrEmpty",
    "isNullOrBlank",
    "defaultIfNull",
    "defaultIfNullOrEmpty",
    "defaultIfNullOrBlank",
    "isString",
    "isNumber",
    "isBoolean",
    "isList",
    "isMap",
    "typeOf",
    "matches",
    "authType",
];

/// The `$extensions` calls, captured into [`Extensions`].
pub(crate) const EXTENSIONS: &[&str] = &[
    "setSubscriptionFilter",
    "setSubscriptionInvalidationFilter",
    "invalidateSubscriptions",
];

/// Methods of strings, lists and maps we implement ([`call_method`]).
pub(crate) const METHODS: &[&str] = &[
    // java.lang.String
    "length",
    "isEmpty",
    "contains",
    "startsWith",
    "endsWith",
    "equals",
    "equalsIgnoreCase",
    "indexOf",
    "lastIndexOf",
    "substring",
    "toLowerCase",
    "toUpperCase",
    "trim",
    "concat",
    "replace",
    "toString",
    // java.util.List
    "size",
    "add",
    "addAll",
    "get",
    "containsAll",
    "clear",
    // java.util.Map
    "put",
    "putAll",
    "containsKey",
    "containsValue",
    "keySet",
    "values",
    "remove",
];

/// The loop variable's properties (`$foreach.hasNext`).
pub(crate) const FOREACH_PROPERTIES: &[&str] = &["hasNext", "index", "count", "first", "last"];

pub(crate) enum Halt {
    Error(Box<TemplateError>),
    Return(Option<Value>),
    Stop,
    Break,
}

type R<T> = Result<T, Halt>;

pub(crate) struct Eval<'c> {
    ctx: &'c Context,
    vars: HashMap<String, Value>,
    pub(crate) out: String,
    pub(crate) extensions: Extensions,
    pub(crate) appended: Vec<TemplateError>,
    steps: usize,
    pub(crate) ctx_value: Value,
}

pub(crate) fn mapping_error(message: impl Into<String>) -> TemplateError {
    TemplateError {
        error_type: Some("MappingTemplate".into()),
        message: message.into(),
        data: Json::Null,
        error_info: Json::Null,
    }
}

fn too_large() -> Halt {
    Halt::Error(Box::new(mapping_error(
        "the template's evaluation exceeded its limits (steps, text or collection size)",
    )))
}

fn json_of(v: &Value) -> R<Json> {
    v.to_json().ok_or_else(too_large)
}

impl<'c> Eval<'c> {
    pub(crate) fn new(ctx: &'c Context) -> Self {
        let ctx_value = ctx.to_value();
        let mut vars = HashMap::new();
        vars.insert("ctx".to_string(), ctx_value.clone());
        vars.insert("context".to_string(), ctx_value.clone());
        Eval {
            ctx,
            vars,
            out: String::new(),
            extensions: Extensions::default(),
            appended: Vec::new(),
            steps: 0,
            ctx_value,
        }
    }

    fn step(&mut self) -> R<()> {
        self.steps += 1;
        if self.steps > MAX_STEPS {
            return Err(too_large());
        }
        Ok(())
    }

    pub(crate) fn nodes(&mut self, nodes: &[Node]) -> R<()> {
        for n in nodes {
            self.node(n)?;
        }
        Ok(())
    }

    /// Renders `nodes` into a string of its own (a double-quoted string's value).
    fn interpolate(&mut self, nodes: &[Node]) -> R<String> {
        let saved = std::mem::take(&mut self.out);
        let r = self.nodes(nodes);
        let text = std::mem::replace(&mut self.out, saved);
        r.map(|()| text)
    }

    fn emit(&mut self, s: &str) -> R<()> {
        if self.out.len() + s.len() > MAX_TEXT {
            return Err(too_large());
        }
        self.out.push_str(s);
        Ok(())
    }

    fn node(&mut self, n: &Node) -> R<()> {
        self.step()?;
        match n {
            Node::Text(t) => self.emit(t),
            Node::Ref(r) => {
                let v = self.reference(r)?;
                match v {
                    Value::Null if r.silent => Ok(()),
                    Value::Null => self.emit(&r.raw),
                    v => {
                        let s = v.render().ok_or_else(too_large)?;
                        self.emit(&s)
                    }
                }
            }
            Node::Set(target, e) => {
                let v = self.expr(e)?;
                self.assign(target, v)
            }
            Node::If(branches, otherwise) => {
                for (cond, body) in branches {
                    if self.expr(cond)?.truthy() {
                        return self.nodes(body);
                    }
                }
                match otherwise {
                    Some(body) => self.nodes(body),
                    None => Ok(()),
                }
            }
            Node::Foreach(var, iter, body) => self.foreach(var, iter, body),
            Node::Return(e) => {
                let v = match e {
                    Some(e) => Some(self.expr(e)?),
                    None => None,
                };
                Err(Halt::Return(v))
            }
            Node::Break => Err(Halt::Break),
            Node::Stop => Err(Halt::Stop),
        }
    }

    fn foreach(&mut self, var: &str, iter: &Expr, body: &[Node]) -> R<()> {
        let items: Vec<Value> = match self.expr(iter)? {
            Value::List(l) => l.borrow().clone(),
            // Velocity iterates a map's values.
            Value::Map(m) => m.borrow().iter().map(|(_, v)| v.clone()).collect(),
            _ => Vec::new(),
        };
        let saved_var = self.vars.get(var).cloned();
        let saved_loop = self.vars.get("foreach").cloned();
        let n = items.len();
        let mut result = Ok(());
        for (i, item) in items.into_iter().enumerate() {
            if let Err(e) = self.step() {
                result = Err(e);
                break;
            }
            self.vars.insert(var.to_string(), item);
            let state = Value::map(vec![
                ("hasNext".into(), Value::Bool(i + 1 < n)),
                ("index".into(), Value::Int(i as i64)),
                ("count".into(), Value::Int(i as i64 + 1)),
                ("first".into(), Value::Bool(i == 0)),
                ("last".into(), Value::Bool(i + 1 == n)),
            ]);
            self.vars.insert("foreach".into(), state);
            match self.nodes(body) {
                Ok(()) => {}
                Err(Halt::Break) => break,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        // The loop variable is scoped to the loop, as in Velocity.
        restore(&mut self.vars, var, saved_var);
        restore(&mut self.vars, "foreach", saved_loop);
        result
    }

    fn assign(&mut self, target: &Reference, v: Value) -> R<()> {
        let Some((last, init)) = target.path.split_last() else {
            self.vars.insert(target.name.clone(), v);
            return Ok(());
        };
        let base = self.vars.get(&target.name).cloned().unwrap_or_default();
        let mut cur = base;
        for seg in init {
            cur = self.segment(cur, seg, target)?;
        }
        match (last, &cur) {
            (Segment::Prop(k), Value::Map(m)) => {
                put(m, k.clone(), v)?;
            }
            (Segment::Index(e), _) => {
                let i = self.expr(e)?;
                match (&cur, i) {
                    (Value::Map(m), Value::Str(k)) => {
                        put(m, k.to_string(), v)?;
                    }
                    (Value::List(l), Value::Int(i)) => {
                        if let Ok(i) = usize::try_from(i)
                            && let Some(slot) = l.borrow_mut().get_mut(i)
                        {
                            *slot = v;
                        }
                    }
                    _ => {}
                }
            }
            // Velocity ignores an assignment through a value that cannot hold it.
            _ => {}
        }
        Ok(())
    }

    fn reference(&mut self, r: &Reference) -> R<Value> {
        match r.name.as_str() {
            "util" | "utils" => return self.util_ref(r),
            "extensions" => return self.extensions_ref(r),
            _ => {}
        }
        let mut cur = self.vars.get(&r.name).cloned().unwrap_or_default();
        for seg in &r.path {
            cur = self.segment(cur, seg, r)?;
        }
        Ok(cur)
    }

    fn segment(&mut self, cur: Value, seg: &Segment, _r: &Reference) -> R<Value> {
        self.step()?;
        Ok(match seg {
            Segment::Prop(k) => match &cur {
                Value::Map(_) => cur.get(k),
                _ => Value::Null,
            },
            Segment::Index(e) => {
                let i = self.expr(e)?;
                match (&cur, i) {
                    (Value::Map(_), Value::Str(k)) => cur.get(&k),
                    (Value::List(l), Value::Int(i)) => usize::try_from(i)
                        .ok()
                        .and_then(|i| l.borrow().get(i).cloned())
                        .unwrap_or_default(),
                    _ => Value::Null,
                }
            }
            Segment::Method(name, args) => {
                let args = self.args(args)?;
                call_method(&cur, name, &args)?
            }
        })
    }

    fn args(&mut self, args: &[Expr]) -> R<Vec<Value>> {
        args.iter().map(|a| self.expr(a)).collect()
    }

    fn util_ref(&mut self, r: &Reference) -> R<Value> {
        let mut segs = r.path.iter();
        let mut cur = match segs.next() {
            Some(Segment::Method(name, args)) => {
                let args = self.args(args)?;
                self.util(name, &args)?
            }
            Some(Segment::Prop(ns)) if ns == "transform" => match segs.next() {
                Some(Segment::Method(name, args)) if name == "toSubscriptionFilter" => {
                    let args = self.args(args)?;
                    to_subscription_filter(&args)?
                }
                _ => return Ok(Value::Null),
            },
            // `$util` alone, `$util.time.…` and other namespaces: not ours.
            _ => return Ok(Value::Null),
        };
        for seg in segs {
            cur = self.segment(cur, seg, r)?;
        }
        Ok(cur)
    }

    fn extensions_ref(&mut self, r: &Reference) -> R<Value> {
        let mut segs = r.path.iter();
        let cur = match segs.next() {
            Some(Segment::Method(name, args)) if EXTENSIONS.contains(&name.as_str()) => {
                let args = self.args(args)?;
                let arg = json_of(args.first().unwrap_or(&Value::Null))?;
                let list = match name.as_str() {
                    "setSubscriptionFilter" => &mut self.extensions.subscription_filters,
                    "setSubscriptionInvalidationFilter" => {
                        &mut self.extensions.subscription_invalidation_filters
                    }
                    _ => &mut self.extensions.invalidate_subscriptions,
                };
                list.push(arg);
                // A void method: renders nothing.
                Value::str("")
            }
            _ => return Ok(Value::Null),
        };
        let mut cur = cur;
        for seg in segs {
            cur = self.segment(cur, seg, r)?;
        }
        Ok(cur)
    }

    /// `$util.NAME(args)`: AppSync's utility reference,
    /// https://docs.aws.amazon.com/appsync/latest/devguide/utility-helpers-in-util.html
    fn util(&mut self, name: &str, args: &[Value]) -> R<Value> {
        let a = |i: usize| args.get(i).cloned().unwrap_or_default();
        let text = |v: &Value| -> R<String> {
            match v {
                Value::Null => Ok(String::new()),
                v => v.render().ok_or_else(too_large),
            }
        };
        Ok(match name {
            "qr" | "quiet" => Value::str(""),
            "toJson" => {
                let j = json_of(&a(0))?;
                Value::str(serde_json::to_string(&j).unwrap_or_else(|_| "null".into()))
            }
            "parseJson" => match a(0) {
                Value::Str(s) => match serde_json::from_str::<Json>(&s) {
                    Ok(j) => Value::from_json(&j),
                    Err(e) => {
                        return Err(Halt::Error(Box::new(mapping_error(format!(
                            "$util.parseJson: the text is not JSON ({e})"
                        )))));
                    }
                },
                _ => {
                    return Err(Halt::Error(Box::new(mapping_error(
                        "$util.parseJson: the argument is not a string",
                    ))));
                }
            },
            "autoId" => Value::str((self.ctx.auto_id)()),
            "error" => return Err(Halt::Error(Box::new(self.template_error(args, None)?))),
            "appendError" => {
                let e = self.template_error(args, None)?;
                self.appended.push(e);
                Value::str("")
            }
            "unauthorized" => {
                // AppSync: "Throws Unauthorized for the field being resolved" (utility-helpers-in-util.html).
                return Err(Halt::Error(Box::new(TemplateError {
                    error_type: Some("Unauthorized".into()),
                    message: self.ctx.unauthorized_message(),
                    data: Json::Null,
                    error_info: Json::Null,
                })));
            }
            "validate" => {
                if a(0).truthy() {
                    Value::str("")
                } else {
                    let rest = args.get(1..).unwrap_or_default();
                    let e = self.template_error(rest, Some("CustomTemplateException"))?;
                    return Err(Halt::Error(Box::new(e)));
                }
            }
            "isNull" => Value::Bool(a(0).is_null()),
            "isNullOrEmpty" => Value::Bool(null_or_empty(&a(0))),
            "isNullOrBlank" => Value::Bool(match a(0) {
                Value::Str(s) => s.trim().is_empty(),
                v => null_or_empty(&v),
            }),
            "defaultIfNull" => {
                if a(0).is_null() {
                    a(1)
                } else {
                    a(0)
                }
            }
            "defaultIfNullOrEmpty" => {
                if null_or_empty(&a(0)) {
                    a(1)
                } else {
                    a(0)
                }
            }
            "defaultIfNullOrBlank" => match a(0) {
                Value::Str(s) if !s.trim().is_empty() => a(0),
                Value::Null | Value::Str(_) => a(1),
                v => v,
            },
            "isString" => Value::Bool(matches!(a(0), Value::Str(_))),
            "isNumber" => Value::Bool(matches!(a(0), Value::Int(_) | Value::Float(_))),
            "isBoolean" => Value::Bool(matches!(a(0), Value::Bool(_))),
            "isList" => Value::Bool(matches!(a(0), Value::List(_))),
            "isMap" => Value::Bool(matches!(a(0), Value::Map(_))),
            "typeOf" => Value::str(a(0).type_name()),
            "matches" => {
                let (pattern, subject) = (text(&a(0))?, text(&a(1))?);
                // Java's Pattern.matches: the whole subject must match.
                match regex_lite::Regex::new(&format!("^(?:{pattern})$")) {
                    Ok(re) => Value::Bool(re.is_match(&subject)),
                    Err(e) => {
                        return Err(Halt::Error(Box::new(mapping_error(format!(
                            "$util.matches: the pattern is not a regular expression ({e})"
                        )))));
                    }
                }
            }
            "authType" => Value::str(self.ctx.auth_type.as_str()),
            _ => Value::Null,
        })
    }

    /// `$util.error(message, errorType, data, errorInfo)`'s error.
    fn template_error(&self, args: &[Value], default_type: Option<&str>) -> R<TemplateError> {
        let a = |i: usize| args.get(i).cloned().unwrap_or_default();
        let message = match a(0) {
            Value::Null => String::new(),
            v => v.render().ok_or_else(too_large)?,
        };
        let error_type = match a(1) {
            Value::Null => default_type.map(str::to_string),
            v => Some(v.render().ok_or_else(too_large)?),
        };
        Ok(TemplateError {
            error_type,
            message,
            data: json_of(&a(2))?,
            error_info: json_of(&a(3))?,
        })
    }

    fn expr(&mut self, e: &Expr) -> R<Value> {
        self.step()?;
        Ok(match e {
            Expr::Null => Value::Null,
            Expr::Bool(b) => Value::Bool(*b),
            Expr::Int(i) => Value::Int(*i),
            Expr::Float(f) => Value::Float(*f),
            Expr::Str(s) => Value::str(s.as_str()),
            Expr::Interp(nodes) => Value::str(self.interpolate(nodes)?),
            Expr::List(items) => Value::list(self.args(items)?),
            Expr::Range(a, b) => {
                let (a, b) = (self.expr(a)?, self.expr(b)?);
                match (a, b) {
                    (Value::Int(a), Value::Int(b)) => {
                        if a.abs_diff(b) >= MAX_COLLECTION as u64 {
                            return Err(too_large());
                        }
                        let items: Vec<Value> = if a <= b {
                            (a..=b).map(Value::Int).collect()
                        } else {
                            (b..=a).rev().map(Value::Int).collect()
                        };
                        Value::list(items)
                    }
                    _ => Value::Null,
                }
            }
            Expr::Map(entries) => {
                let mut m: Vec<(String, Value)> = Vec::with_capacity(entries.len());
                for (k, v) in entries {
                    let k = match self.expr(k)? {
                        Value::Null => "null".to_string(),
                        k => k.render().ok_or_else(too_large)?,
                    };
                    let v = self.expr(v)?;
                    match m.iter_mut().find(|(k2, _)| *k2 == k) {
                        Some(slot) => slot.1 = v,
                        None => m.push((k, v)),
                    }
                }
                Value::map(m)
            }
            Expr::Ref(r) => self.reference(r)?,
            Expr::Not(e) => Value::Bool(!self.expr(e)?.truthy()),
            Expr::Neg(e) => match self.expr(e)? {
                Value::Int(i) => i
                    .checked_neg()
                    .map_or(Value::Float(-(i as f64)), Value::Int),
                Value::Float(f) => Value::Float(-f),
                _ => Value::Null,
            },
            Expr::Bin(op, l, r) => self.binary(*op, l, r)?,
        })
    }

    fn binary(&mut self, op: BinOp, l: &Expr, r: &Expr) -> R<Value> {
        // Short-circuit, as Java's && and ||.
        match op {
            BinOp::And => {
                return Ok(Value::Bool(
                    self.expr(l)?.truthy() && self.expr(r)?.truthy(),
                ));
            }
            BinOp::Or => {
                return Ok(Value::Bool(
                    self.expr(l)?.truthy() || self.expr(r)?.truthy(),
                ));
            }
            _ => {}
        }
        let (a, b) = (self.expr(l)?, self.expr(r)?);
        Ok(match op {
            BinOp::Eq => Value::Bool(velocity_eq(&a, &b)?),
            BinOp::Ne => Value::Bool(!velocity_eq(&a, &b)?),
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
                // Velocity compares numbers only; anything else is false.
                Value::Bool(match compare(&a, &b) {
                    Some(o) => match op {
                        BinOp::Lt => o.is_lt(),
                        BinOp::Le => o.is_le(),
                        BinOp::Gt => o.is_gt(),
                        _ => o.is_ge(),
                    },
                    None => false,
                })
            }
            _ => arithmetic(op, &a, &b),
        })
    }
}

/// Disjunctive normal form of a `toSubscriptionFilter` map: a list of AND'ed condition lists.
type Dnf = Vec<Vec<Value>>;

/// The most OR'ed alternatives a conversion may build before it is refused (AppSync allows 10).
const MAX_DNF: usize = 10_000;

fn dnf_product(a: Dnf, b: &Dnf) -> R<Dnf> {
    if a.len().saturating_mul(b.len()) > MAX_DNF {
        return Err(too_large());
    }
    Ok(a.iter()
        .flat_map(|x| {
            b.iter().map(move |y| {
                let mut v = x.clone();
                v.extend(y.iter().cloned());
                v
            })
        })
        .collect())
}

fn dnf(m: &Value, ignore: &[String], depth: usize) -> R<Dnf> {
    if depth > crate::value::MAX_DEPTH {
        return Err(too_large());
    }
    let Value::Map(entries) = m else {
        return Ok(vec![Vec::new()]);
    };
    let entries = entries.borrow().clone();
    let mut acc: Dnf = vec![Vec::new()];
    for (k, v) in entries {
        if ignore.contains(&k) {
            continue;
        }
        let subs = || match &v {
            Value::List(l) => l.borrow().clone(),
            _ => Vec::new(),
        };
        match k.as_str() {
            "or" => {
                let mut alts = Vec::new();
                for sub in subs() {
                    alts.extend(dnf(&sub, ignore, depth + 1)?);
                    if alts.len() > MAX_DNF {
                        return Err(too_large());
                    }
                }
                acc = dnf_product(acc, &alts)?;
            }
            "and" => {
                for sub in subs() {
                    let d = dnf(&sub, ignore, depth + 1)?;
                    acc = dnf_product(acc, &d)?;
                }
            }
            _ => {
                // Several operators on one field are OR'ed.
                let alts: Dnf = match &v {
                    Value::Map(ops) => ops
                        .borrow()
                        .iter()
                        .map(|(op, value)| {
                            vec![Value::map(vec![
                                ("fieldName".into(), Value::str(k.as_str())),
                                ("operator".into(), Value::str(op.as_str())),
                                ("value".into(), value.clone()),
                            ])]
                        })
                        .collect(),
                    _ => Vec::new(),
                };
                acc = dnf_product(acc, &alts)?;
            }
        }
    }
    Ok(acc)
}

/// `$util.transform.toSubscriptionFilter(Map[, List ignoreFields[, Map rules]])`: `{field: {op:
/// value}}` to a `filterGroup`; `and`/`or` lists nest and several operators on one field are OR'ed
/// (https://docs.aws.amazon.com/appsync/latest/devguide/transformation-helpers-in-utils-transform.html).
/// The same conversion as the harness's model (tests/harness/lib/filters.js); `rules` is ignored.
fn to_subscription_filter(args: &[Value]) -> R<Value> {
    let ignore: Vec<String> = match args.get(1) {
        Some(Value::List(l)) => l
            .borrow()
            .iter()
            .filter_map(|v| match v {
                Value::Str(s) => Some(s.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let groups = dnf(args.first().unwrap_or(&Value::Null), &ignore, 0)?;
    Ok(Value::map(vec![(
        "filterGroup".into(),
        Value::list(
            groups
                .into_iter()
                .map(|filters| Value::map(vec![("filters".into(), Value::list(filters))]))
                .collect(),
        ),
    )]))
}

fn restore(vars: &mut HashMap<String, Value>, name: &str, saved: Option<Value>) {
    match saved {
        Some(v) => vars.insert(name.to_string(), v),
        None => vars.remove(name),
    };
}

fn put(m: &crate::value::Map, k: String, v: Value) -> R<Value> {
    let mut m = m.borrow_mut();
    if let Some(slot) = m.iter_mut().find(|(k2, _)| *k2 == k) {
        return Ok(std::mem::replace(&mut slot.1, v));
    }
    if m.len() >= MAX_COLLECTION {
        return Err(too_large());
    }
    m.push((k, v));
    Ok(Value::Null)
}

fn null_or_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Str(s) => s.is_empty(),
        Value::List(l) => l.borrow().is_empty(),
        Value::Map(m) => m.borrow().is_empty(),
        _ => false,
    }
}

/// Velocity 1.7's `==`: null equals only null; numbers by value; values of one kind by `equals`;
/// values of different kinds by their `toString()`.
fn velocity_eq(a: &Value, b: &Value) -> R<bool> {
    Ok(match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Null, _) | (_, Value::Null) => false,
        _ if a.as_f64().is_some() && b.as_f64().is_some() => a.java_equals(b),
        (Value::Bool(_), Value::Bool(_))
        | (Value::Str(_), Value::Str(_))
        | (Value::List(_), Value::List(_))
        | (Value::Map(_), Value::Map(_)) => a.java_equals(b),
        _ => a.render().ok_or_else(too_large)? == b.render().ok_or_else(too_large)?,
    })
}

fn compare(a: &Value, b: &Value) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => Some(x.cmp(y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

fn arithmetic(op: BinOp, a: &Value, b: &Value) -> Value {
    if let (Value::Int(x), Value::Int(y)) = (a, b) {
        let (x, y) = (*x, *y);
        let r = match op {
            BinOp::Add => x.checked_add(y),
            BinOp::Sub => x.checked_sub(y),
            BinOp::Mul => x.checked_mul(y),
            // Division by zero is null in Velocity, not an exception.
            BinOp::Div => {
                if y == 0 {
                    return Value::Null;
                }
                x.checked_div(y)
            }
            _ => {
                if y == 0 {
                    return Value::Null;
                }
                x.checked_rem(y)
            }
        };
        if let Some(r) = r {
            return Value::Int(r);
        }
    }
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => Value::Float(match op {
            BinOp::Add => x + y,
            BinOp::Sub => x - y,
            BinOp::Mul => x * y,
            BinOp::Div => {
                if y == 0.0 {
                    return Value::Null;
                }
                x / y
            }
            _ => {
                if y == 0.0 {
                    return Value::Null;
                }
                x % y
            }
        }),
        _ => Value::Null,
    }
}

fn int_arg(args: &[Value], i: usize) -> Option<i64> {
    match args.get(i) {
        Some(Value::Int(n)) => Some(*n),
        _ => None,
    }
}

fn str_arg(args: &[Value], i: usize) -> Option<Rc<str>> {
    match args.get(i) {
        Some(Value::Str(s)) => Some(s.clone()),
        _ => None,
    }
}

/// A method on a value, with Java's behaviour; a method the value does not have (or arguments
/// of the wrong type) gives null, which Velocity renders as the reference's own text.
pub(crate) fn call_method(recv: &Value, name: &str, args: &[Value]) -> R<Value> {
    let n = args.len();
    Ok(match (recv, name, n) {
        (Value::Null, _, _) => Value::Null,
        (_, "toString", 0) => Value::str(recv.render().ok_or_else(too_large)?),
        (_, "equals", 1) => Value::Bool(recv.java_equals(&args[0])),
        (Value::Str(s), _, _) => string_method(s, name, args)?,
        (Value::List(l), _, _) => {
            let len = l.borrow().len();
            match (name, n) {
                ("size", 0) => Value::Int(len as i64),
                ("isEmpty", 0) => Value::Bool(len == 0),
                ("contains", 1) => Value::Bool(l.borrow().iter().any(|x| x.java_equals(&args[0]))),
                ("containsAll", 1) => match &args[0] {
                    Value::List(other) => {
                        let other = other.borrow().clone();
                        let me = l.borrow();
                        Value::Bool(other.iter().all(|o| me.iter().any(|x| x.java_equals(o))))
                    }
                    _ => Value::Null,
                },
                ("indexOf", 1) => Value::Int(
                    l.borrow()
                        .iter()
                        .position(|x| x.java_equals(&args[0]))
                        .map_or(-1, |i| i as i64),
                ),
                ("get", 1) => match int_arg(args, 0).and_then(|i| usize::try_from(i).ok()) {
                    Some(i) => l.borrow().get(i).cloned().unwrap_or_default(),
                    None => Value::Null,
                },
                ("add", 1) => {
                    if len >= MAX_COLLECTION {
                        return Err(too_large());
                    }
                    l.borrow_mut().push(args[0].clone());
                    Value::Bool(true)
                }
                ("addAll", 1) => match &args[0] {
                    Value::List(other) => {
                        // Copy first: `$l.addAll($l)` reads and writes one list.
                        let items = other.borrow().clone();
                        if len + items.len() > MAX_COLLECTION {
                            return Err(too_large());
                        }
                        let changed = !items.is_empty();
                        l.borrow_mut().extend(items);
                        Value::Bool(changed)
                    }
                    _ => Value::Null,
                },
                ("clear", 0) => {
                    l.borrow_mut().clear();
                    Value::str("")
                }
                ("remove", 1) => match &args[0] {
                    Value::Int(i) => match usize::try_from(*i) {
                        Ok(i) if i < len => l.borrow_mut().remove(i),
                        _ => Value::Null,
                    },
                    other => {
                        let pos = l.borrow().iter().position(|x| x.java_equals(other));
                        match pos {
                            Some(p) => {
                                l.borrow_mut().remove(p);
                                Value::Bool(true)
                            }
                            None => Value::Bool(false),
                        }
                    }
                },
                _ => Value::Null,
            }
        }
        (Value::Map(m), _, _) => match (name, n) {
            ("get", 1) => match &args[0] {
                Value::Str(k) => recv.get(k),
                Value::Null => Value::Null,
                k => recv.get(&k.render().ok_or_else(too_large)?),
            },
            ("put", 2) => match &args[0] {
                Value::Str(k) => put(m, k.to_string(), args[1].clone())?,
                _ => Value::Null,
            },
            ("putAll", 1) => match &args[0] {
                Value::Map(other) => {
                    let entries = other.borrow().clone();
                    for (k, v) in entries {
                        put(m, k, v)?;
                    }
                    Value::str("")
                }
                _ => Value::Null,
            },
            ("containsKey", 1) => match &args[0] {
                Value::Str(k) => Value::Bool(m.borrow().iter().any(|(k2, _)| **k2 == **k)),
                _ => Value::Bool(false),
            },
            ("containsValue", 1) => {
                Value::Bool(m.borrow().iter().any(|(_, v)| v.java_equals(&args[0])))
            }
            ("keySet", 0) => Value::list(
                m.borrow()
                    .iter()
                    .map(|(k, _)| Value::str(k.as_str()))
                    .collect(),
            ),
            ("values", 0) => Value::list(m.borrow().iter().map(|(_, v)| v.clone()).collect()),
            ("size", 0) => Value::Int(m.borrow().len() as i64),
            ("isEmpty", 0) => Value::Bool(m.borrow().is_empty()),
            ("remove", 1) => match &args[0] {
                Value::Str(k) => {
                    let pos = m.borrow().iter().position(|(k2, _)| **k2 == **k);
                    match pos {
                        Some(p) => m.borrow_mut().remove(p).1,
                        None => Value::Null,
                    }
                }
                _ => Value::Null,
            },
            ("clear", 0) => {
                m.borrow_mut().clear();
                Value::str("")
            }
            _ => Value::Null,
        },
        _ => Value::Null,
    })
}

fn string_method(s: &Rc<str>, name: &str, args: &[Value]) -> R<Value> {
    let n = args.len();
    let arg = |i| str_arg(args, i);
    Ok(match (name, n) {
        ("length", 0) => Value::Int(java_len(s) as i64),
        ("isEmpty", 0) => Value::Bool(s.is_empty()),
        ("contains", 1) => arg(0).map_or(Value::Null, |x| Value::Bool(s.contains(&*x))),
        ("startsWith", 1) => arg(0).map_or(Value::Null, |x| Value::Bool(s.starts_with(&*x))),
        ("startsWith", 2) => match (arg(0), int_arg(args, 1)) {
            (Some(x), Some(off)) => Value::Bool(
                usize::try_from(off)
                    .ok()
                    .and_then(|off| byte_offset(s, off))
                    .is_some_and(|b| s[b..].starts_with(&*x)),
            ),
            _ => Value::Null,
        },
        ("endsWith", 1) => arg(0).map_or(Value::Null, |x| Value::Bool(s.ends_with(&*x))),
        ("equalsIgnoreCase", 1) => match &args[0] {
            Value::Str(x) => Value::Bool(s.to_lowercase() == x.to_lowercase()),
            _ => Value::Bool(false),
        },
        ("indexOf", 1) => arg(0).map_or(Value::Null, |x| {
            Value::Int(s.find(&*x).map_or(-1, |b| unit_index(s, b) as i64))
        }),
        ("lastIndexOf", 1) => arg(0).map_or(Value::Null, |x| {
            Value::Int(s.rfind(&*x).map_or(-1, |b| unit_index(s, b) as i64))
        }),
        ("substring", 1 | 2) => {
            let len = java_len(s) as i64;
            let begin = int_arg(args, 0);
            let end = if n == 2 { int_arg(args, 1) } else { Some(len) };
            match (begin, end) {
                (Some(b), Some(e)) if 0 <= b && b <= e && e <= len => {
                    match (byte_offset(s, b as usize), byte_offset(s, e as usize)) {
                        (Some(b), Some(e)) => Value::str(&s[b..e]),
                        // Inside a surrogate pair: Java would split it; we refuse.
                        _ => Value::Null,
                    }
                }
                // Java throws StringIndexOutOfBoundsException: AppSync fails the request.
                (Some(_), Some(_)) => {
                    return Err(Halt::Error(Box::new(mapping_error(format!(
                        "substring: index out of range for a string of length {len}"
                    )))));
                }
                _ => Value::Null,
            }
        }
        ("toLowerCase", 0) => Value::str(s.to_lowercase()),
        ("toUpperCase", 0) => Value::str(s.to_uppercase()),
        // Java's trim removes code points <= U+0020.
        ("trim", 0) => Value::str(s.trim_matches(|c: char| c <= ' ')),
        ("concat", 1) => match arg(0) {
            Some(x) => {
                if s.len() + x.len() > MAX_TEXT {
                    return Err(too_large());
                }
                Value::str(format!("{s}{x}"))
            }
            None => Value::Null,
        },
        ("replace", 2) => match (arg(0), arg(1)) {
            (Some(from), Some(to)) => {
                let count = if from.is_empty() {
                    s.chars().count() + 1
                } else {
                    s.matches(&*from).count()
                };
                if s.len() + count.saturating_mul(to.len()) > MAX_TEXT {
                    return Err(too_large());
                }
                Value::str(s.replace(&*from, &to))
            }
            _ => Value::Null,
        },
        _ => Value::Null,
    })
}
