//! Template values with the Java semantics AppSync's Velocity gives them: lists and maps are shared
//! references (`#set($a = $b)` aliases, `$a.add(x)` is seen through `$b`), strings measure length
//! in UTF-16 code units as `java.lang.String.length()` does, integers and decimals are distinct.

use std::cell::RefCell;
use std::rc::Rc;

use serde_json::Value as Json;

/// A list shared by reference, as a `java.util.ArrayList`.
pub(crate) type List = Rc<Cell<Value>>;
/// A map shared by reference, keeping insertion order (AppSync's maps are `LinkedHashMap`s).
pub(crate) type Map = Rc<Cell<(String, Value)>>;

/// The storage of a list or map. Dropping it takes its values apart with a work list instead of
/// recursion: a template can nest values a million levels deep (`#set($a = [$a])` in a loop), and
/// a recursive drop of that would overflow the stack.
#[derive(Debug, Default)]
pub(crate) struct Cell<T: Holds>(RefCell<Vec<T>>);

impl<T: Holds> std::ops::Deref for Cell<T> {
    type Target = RefCell<Vec<T>>;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

/// What a [`Cell`] holds: values, or keyed values.
pub(crate) trait Holds: Sized {
    fn into_value(self) -> Value;
}

impl Holds for Value {
    fn into_value(self) -> Value {
        self
    }
}

impl Holds for (String, Value) {
    fn into_value(self) -> Value {
        self.1
    }
}

impl<T: Holds> Drop for Cell<T> {
    fn drop(&mut self) {
        let mut work: Vec<Value> = std::mem::take(self.0.get_mut())
            .into_iter()
            .map(Holds::into_value)
            .collect();
        while let Some(v) = work.pop() {
            // Only the last owner empties a cell; a shared one lives on elsewhere.
            match v {
                Value::List(l) => {
                    if let Ok(mut cell) = Rc::try_unwrap(l) {
                        work.extend(std::mem::take(cell.0.get_mut()));
                    }
                }
                Value::Map(m) => {
                    if let Ok(mut cell) = Rc::try_unwrap(m) {
                        work.extend(std::mem::take(cell.0.get_mut()).into_iter().map(|(_, v)| v));
                    }
                }
                _ => {}
            }
        }
    }
}

/// One template value. Velocity's "undefined" and `null` are both [`Value::Null`]: both render as
/// the reference's own text and both are false in conditions.
#[derive(Debug, Clone, Default)]
pub(crate) enum Value {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Rc<str>),
    List(List),
    Map(Map),
}

impl Value {
    pub(crate) fn str(s: impl Into<Rc<str>>) -> Value {
        Value::Str(s.into())
    }

    pub(crate) fn list(items: Vec<Value>) -> Value {
        Value::List(Rc::new(Cell(RefCell::new(items))))
    }

    pub(crate) fn map(entries: Vec<(String, Value)>) -> Value {
        Value::Map(Rc::new(Cell(RefCell::new(entries))))
    }

    pub(crate) fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Velocity's truth: only `null` and `false` are false (Velocity 1.7, which AppSync runs).
    pub(crate) fn truthy(&self) -> bool {
        !matches!(self, Value::Null | Value::Bool(false))
    }

    pub(crate) fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// A deep copy as JSON, or `None` when it would hold more than [`MAX_NODES`] values or nest
    /// deeper than [`MAX_DEPTH`] (a list added to itself twice would otherwise never end).
    pub(crate) fn to_json(&self) -> Option<Json> {
        let mut budget = MAX_NODES;
        self.to_json_depth(0, &mut budget)
    }

    fn to_json_depth(&self, depth: usize, budget: &mut usize) -> Option<Json> {
        if depth > MAX_DEPTH || *budget == 0 {
            return None;
        }
        *budget -= 1;
        Some(match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
            Value::Str(s) => Json::String(s.to_string()),
            Value::List(l) => Json::Array(
                l.borrow()
                    .iter()
                    .map(|v| v.to_json_depth(depth + 1, budget))
                    .collect::<Option<_>>()?,
            ),
            Value::Map(m) => Json::Object(
                m.borrow()
                    .iter()
                    .map(|(k, v)| Some((k.clone(), v.to_json_depth(depth + 1, budget)?)))
                    .collect::<Option<_>>()?,
            ),
        })
    }

    /// A fresh value from JSON: integers that fit an `i64` become integers, other numbers decimals.
    pub(crate) fn from_json(j: &Json) -> Value {
        match j {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Json::String(s) => Value::str(s.as_str()),
            Json::Array(a) => Value::list(a.iter().map(Value::from_json).collect()),
            Json::Object(o) => Value::map(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    /// `toString()` as Java renders it in text: `[a, b]` for lists, `{k=v}` for maps, `1.5` and
    /// `2.0` for decimals.
    /// `None` past [`MAX_NODES`] values, as [`Value::to_json`].
    pub(crate) fn render(&self) -> Option<String> {
        let mut out = String::new();
        let mut budget = MAX_NODES;
        self.render_into(&mut out, 0, &mut budget).then_some(out)
    }

    fn render_into(&self, out: &mut String, depth: usize, budget: &mut usize) -> bool {
        if depth > MAX_DEPTH || *budget == 0 {
            return false;
        }
        *budget -= 1;
        match self {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Float(f) => out.push_str(&java_double(*f)),
            Value::Str(s) => out.push_str(s),
            Value::List(l) => {
                out.push('[');
                for (i, v) in l.borrow().iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    if !v.render_into(out, depth + 1, budget) {
                        return false;
                    }
                }
                out.push(']');
            }
            Value::Map(m) => {
                out.push('{');
                for (i, (k, v)) in m.borrow().iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    out.push_str(k);
                    out.push('=');
                    if !v.render_into(out, depth + 1, budget) {
                        return false;
                    }
                }
                out.push('}');
            }
        }
        true
    }

    /// `equals()`: numbers by value (an integer equals the same decimal), strings by content,
    /// lists and maps element by element.
    /// Values too large to compare within [`MAX_NODES`] steps are unequal.
    pub(crate) fn java_equals(&self, other: &Value) -> bool {
        let mut budget = MAX_NODES;
        self.equals_depth(other, 0, &mut budget)
    }

    fn equals_depth(&self, other: &Value, depth: usize, budget: &mut usize) -> bool {
        if depth > MAX_DEPTH || *budget == 0 {
            return false;
        }
        *budget -= 1;
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(a), Value::Bool(b)) => a == b,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::List(a), Value::List(b)) => {
                if Rc::ptr_eq(a, b) {
                    return true;
                }
                let (a, b) = (a.borrow(), b.borrow());
                a.len() == b.len()
                    && a.iter()
                        .zip(b.iter())
                        .all(|(x, y)| x.equals_depth(y, depth + 1, budget))
            }
            (Value::Map(a), Value::Map(b)) => {
                if Rc::ptr_eq(a, b) {
                    return true;
                }
                let (a, b) = (a.borrow(), b.borrow());
                a.len() == b.len()
                    && a.iter().all(|(k, v)| {
                        b.iter()
                            .find(|(k2, _)| k2 == k)
                            .is_some_and(|(_, w)| v.equals_depth(w, depth + 1, budget))
                    })
            }
            _ => match (self.as_f64(), other.as_f64()) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            },
        }
    }

    /// The map entry for `key`, or null.
    pub(crate) fn get(&self, key: &str) -> Value {
        match self {
            Value::Map(m) => m
                .borrow()
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
            _ => Value::Null,
        }
    }

    /// The name `$util.typeOf` gives this value.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "Null",
            Value::Bool(_) => "Boolean",
            Value::Int(_) | Value::Float(_) => "Number",
            Value::Str(_) => "String",
            Value::List(_) => "List",
            Value::Map(_) => "Map",
        }
    }
}

/// How deep values nest before serialisation stops (a self-containing list would never end).
pub(crate) const MAX_DEPTH: usize = 64;
/// How many values one serialisation, rendering or comparison visits at most.
pub(crate) const MAX_NODES: usize = 1_000_000;

/// Java's `Double.toString` for the values templates meet: `2.0`, `0.5`, `1.0E21`.
fn java_double(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if f.fract() == 0.0 && f.abs() < 1e7 {
        return format!("{f:.1}");
    }
    format!("{f}")
}

/// Length in UTF-16 code units, as `String.length()`.
pub(crate) fn java_len(s: &str) -> usize {
    s.encode_utf16().count()
}

/// Strings index in UTF-16 code units: the byte offset of code unit `unit`, or `None` when it
/// falls inside a surrogate pair or past the end.
pub(crate) fn byte_offset(s: &str, unit: usize) -> Option<usize> {
    let mut units = 0;
    for (i, c) in s.char_indices() {
        if units == unit {
            return Some(i);
        }
        units += c.len_utf16();
        if units > unit {
            return None;
        }
    }
    (units == unit).then_some(s.len())
}

/// The UTF-16 index of byte offset `byte` (a char boundary).
pub(crate) fn unit_index(s: &str, byte: usize) -> usize {
    java_len(&s[..byte])
}
