//! AppSync's enhanced subscription filters: whether a filter delivers a published message, and
//! whether a filter is within AppSync's limits.
//!
//! Semantics, from "Defining enhanced subscriptions filters in AWS AppSync"
//! (https://docs.aws.amazon.com/appsync/latest/devguide/aws-appsync-real-time-enhanced-filtering.html)
//! and the `$extensions` reference
//! (https://docs.aws.amazon.com/appsync/latest/devguide/extensions.html): a filter is
//! `{"filterGroup": [{"filters": [{"fieldName", "operator", "value"}, …]}, …]}`; the entries of
//! `filterGroup` are OR'ed, the conditions of one `filters` list are AND'ed; the operators are
//! `eq ne le lt ge gt contains notContains beginsWith in notIn between containsAny`, and
//! comparisons are case sensitive. Filters test the mutation's returned selection set; a nested
//! field is named `a.b.c`. A field the message lacks (or holds null) satisfies only the negative
//! operators (`ne`, `notContains`, `notIn`), as the isolation harness models it
//! (tests/harness/lib/filters.js).

use groupcast::limits::{
    FILTER_CONTAINS_ANY_MAX_VALUES, FILTER_FIELD_MAX_LEVELS, FILTER_GROUP_MAX_FILTERS,
    FILTER_IN_MAX_VALUES, FILTER_MAX_CONDITIONS, FILTER_VALUE_MAX_CHARS,
};
use serde_json::Value as Json;

/// The operators AppSync accepts, case sensitive.
pub const OPERATORS: [&str; 13] = [
    "eq",
    "ne",
    "le",
    "lt",
    "ge",
    "gt",
    "contains",
    "notContains",
    "beginsWith",
    "in",
    "notIn",
    "between",
    "containsAny",
];

/// Whether AppSync delivers `payload` (the mutation's returned selection set) to a subscription
/// whose filter is `filter`. A filter that is not a `filterGroup` object delivers nothing: a
/// malformed filter fails closed.
pub fn filter_matches(filter: &Json, payload: &Json) -> bool {
    let Some(groups) = filter.get("filterGroup").and_then(Json::as_array) else {
        return false;
    };
    groups.iter().any(|entry| {
        match entry.get("filters").and_then(Json::as_array) {
            // An entry without conditions proves nothing; it admits nothing.
            Some(conds) if !conds.is_empty() => conds.iter().all(|c| condition(c, payload)),
            _ => false,
        }
    })
}

fn field<'a>(payload: &'a Json, name: &str) -> Option<&'a Json> {
    let mut cur = payload;
    for k in name.split('.') {
        cur = cur.as_object()?.get(k)?;
    }
    Some(cur)
}

fn scalar(v: &Json) -> bool {
    matches!(v, Json::String(_) | Json::Number(_) | Json::Bool(_))
}

/// Scalar equality: strings exactly (case sensitive), numbers by value, booleans.
fn same(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64() == y.as_f64(),
        (Json::String(x), Json::String(y)) => x == y,
        (Json::Bool(x), Json::Bool(y)) => x == y,
        _ => false,
    }
}

/// Order of two scalars of one type (strings by code unit, numbers by value).
fn order(a: &Json, b: &Json) -> Option<std::cmp::Ordering> {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => x.as_f64()?.partial_cmp(&y.as_f64()?),
        (Json::String(x), Json::String(y)) => Some(x.encode_utf16().cmp(y.encode_utf16())),
        _ => None,
    }
}

fn condition(c: &Json, payload: &Json) -> bool {
    let (Some(name), Some(op)) = (
        c.get("fieldName").and_then(Json::as_str),
        c.get("operator").and_then(Json::as_str),
    ) else {
        return false;
    };
    let val = c.get("value").unwrap_or(&Json::Null);
    let f = match field(payload, name) {
        Some(f) if !f.is_null() => f,
        _ => return matches!(op, "ne" | "notContains" | "notIn"),
    };
    let list_has = |list: &Json, x: &Json| {
        list.as_array()
            .is_some_and(|l| l.iter().any(|v| same(v, x)))
    };
    let contains = || match f {
        Json::Array(items) => items.iter().any(|x| same(x, val)),
        Json::String(s) => val.as_str().is_some_and(|v| s.contains(v)),
        _ => false,
    };
    match op {
        "eq" => scalar(f) && same(f, val),
        "ne" => !(scalar(f) && same(f, val)),
        "lt" => order(f, val).is_some_and(|o| o.is_lt()),
        "le" => order(f, val).is_some_and(|o| o.is_le()),
        "gt" => order(f, val).is_some_and(|o| o.is_gt()),
        "ge" => order(f, val).is_some_and(|o| o.is_ge()),
        "contains" => contains(),
        "notContains" => !contains(),
        "beginsWith" => match (f, val) {
            (Json::String(s), Json::String(p)) => s.starts_with(p.as_str()),
            _ => false,
        },
        "in" => scalar(f) && list_has(val, f),
        "notIn" => !(scalar(f) && list_has(val, f)),
        "between" => match val.as_array().map(Vec::as_slice) {
            Some([lo, hi]) => {
                order(f, lo).is_some_and(|o| o.is_ge()) && order(f, hi).is_some_and(|o| o.is_le())
            }
            _ => false,
        },
        "containsAny" => match f {
            Json::Array(items) => items.iter().any(|x| list_has(val, x)),
            _ => false,
        },
        _ => false,
    }
}

/// Every way `filter` breaks AppSync's rules, as sentences naming the entry and the rule; empty
/// when AppSync accepts it. The limits are groupcast's ([`groupcast::limits`]), from the
/// enhanced-filtering guide: ≤ 10 `filterGroup` entries (each `in` value counts as one), ≤ 5
/// conditions on distinct fields per entry, ≤ 5 values for `in`/`notIn`, ≤ 20 for `containsAny`,
/// strings ≤ 256 characters, field names nested ≤ 5 levels.
pub fn limit_violations(filter: &Json) -> Vec<String> {
    let mut v = Vec::new();
    let Some(obj) = filter.as_object() else {
        return vec!["filter is not an object".into()];
    };
    let Some(fg) = obj.get("filterGroup").and_then(Json::as_array) else {
        return vec!["filter has no filterGroup list".into()];
    };
    let extra: Vec<&str> = obj
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "filterGroup")
        .collect();
    if !extra.is_empty() {
        v.push(format!("filter has unknown keys {}", extra.join(", ")));
    }
    if fg.is_empty() {
        v.push("filterGroup is empty".into());
    }
    let mut expanded = 0usize;
    for (i, entry) in fg.iter().enumerate() {
        let at = format!("filterGroup[{i}]");
        let Some(conds) = entry
            .get("filters")
            .and_then(Json::as_array)
            .filter(|c| !c.is_empty())
        else {
            v.push(format!("{at} has no filters"));
            continue;
        };
        let mut names: Vec<&str> = Vec::new();
        let mut product = 1usize;
        for (j, c) in conds.iter().enumerate() {
            let cat = format!("{at}.filters[{j}]");
            match c.get("fieldName").and_then(Json::as_str) {
                Some(n) if !n.is_empty() => {
                    if !names.contains(&n) {
                        names.push(n);
                    } else {
                        v.push(format!(
                            "{cat}.fieldName {n:?} repeats a fieldName of this entry"
                        ));
                    }
                    if n.split('.').count() > FILTER_FIELD_MAX_LEVELS {
                        v.push(format!(
                            "{cat}.fieldName nests more than {FILTER_FIELD_MAX_LEVELS} levels"
                        ));
                    }
                }
                _ => v.push(format!("{cat} has no fieldName")),
            }
            let op = c.get("operator").and_then(Json::as_str).unwrap_or("");
            if !OPERATORS.contains(&op) {
                v.push(format!("{cat}.operator {op:?} is not an AppSync operator"));
            }
            let value = c.get("value");
            let list = value.and_then(Json::as_array);
            match op {
                "containsAny" => match list {
                    Some(l) if l.is_empty() => {
                        v.push(format!("{cat}: containsAny needs a non-empty list"))
                    }
                    Some(l) if l.len() > FILTER_CONTAINS_ANY_MAX_VALUES => v.push(format!(
                        "{cat}: containsAny has {} values, AppSync allows {FILTER_CONTAINS_ANY_MAX_VALUES}",
                        l.len()
                    )),
                    Some(_) => {}
                    None => v.push(format!("{cat}: containsAny needs a non-empty list")),
                },
                "in" | "notIn" => match list {
                    Some(l) if l.len() <= FILTER_IN_MAX_VALUES => {
                        if op == "in" {
                            product = product.saturating_mul(l.len().max(1));
                        }
                    }
                    _ => v.push(format!(
                        "{cat}: {op} takes a list of at most {FILTER_IN_MAX_VALUES} values"
                    )),
                },
                "between" if list.is_none_or(|l| l.len() != 2) => {
                    v.push(format!("{cat}: between needs [low, high]"));
                }
                _ => {}
            }
            match value {
                None => v.push(format!("{cat} has no value")),
                Some(value) => {
                    let values = list.map_or_else(|| vec![value], |l| l.iter().collect());
                    for x in values {
                        if let Some(s) = x.as_str() {
                            let n = s.encode_utf16().count();
                            if n > FILTER_VALUE_MAX_CHARS {
                                v.push(format!(
                                    "{cat}: a value has {n} characters, AppSync allows {FILTER_VALUE_MAX_CHARS}"
                                ));
                            }
                        }
                    }
                }
            }
        }
        if names.len() > FILTER_MAX_CONDITIONS {
            v.push(format!(
                "{at} has {} conditions, AppSync allows {FILTER_MAX_CONDITIONS}",
                names.len()
            ));
        }
        expanded = expanded.saturating_add(product);
    }
    if expanded > FILTER_GROUP_MAX_FILTERS {
        v.push(format!(
            "filterGroup has {expanded} filters (in expanded), AppSync allows {FILTER_GROUP_MAX_FILTERS}"
        ));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(field: &str, op: &str, value: Json) -> Json {
        json!({"filterGroup": [{"filters": [{"fieldName": field, "operator": op, "value": value}]}]})
    }

    fn m(field: &str, op: &str, value: Json, payload: Json) -> bool {
        filter_matches(&one(field, op, value), &payload)
    }

    #[test]
    fn eq_matches_equal_scalars_case_sensitively() {
        assert!(m("t", "eq", json!("a"), json!({"t": "a"})));
        assert!(!m("t", "eq", json!("a"), json!({"t": "A"})));
        assert!(m("n", "eq", json!(1), json!({"n": 1.0})));
        assert!(!m("n", "eq", json!("1"), json!({"n": 1})));
        assert!(!m("t", "eq", json!("a"), json!({})));
    }

    #[test]
    fn ne_matches_different_and_missing_fields() {
        assert!(m("t", "ne", json!("a"), json!({"t": "b"})));
        assert!(!m("t", "ne", json!("a"), json!({"t": "a"})));
        assert!(m("t", "ne", json!("a"), json!({})));
        assert!(m("t", "ne", json!("a"), json!({"t": null})));
    }

    #[test]
    fn lt_le_gt_ge_order_numbers_and_strings_of_one_type_only() {
        assert!(m("n", "lt", json!(5), json!({"n": 4})));
        assert!(!m("n", "lt", json!(5), json!({"n": 5})));
        assert!(m("n", "le", json!(5), json!({"n": 5})));
        assert!(m("n", "gt", json!(5), json!({"n": 6})));
        assert!(!m("n", "gt", json!(5), json!({"n": 5})));
        assert!(m("n", "ge", json!(5), json!({"n": 5})));
        assert!(m("s", "lt", json!("b"), json!({"s": "a"})));
        assert!(!m("s", "lt", json!("5"), json!({"s": 4})));
        assert!(!m("n", "ge", json!(1), json!({})));
    }

    #[test]
    fn contains_tests_substrings_and_list_membership() {
        assert!(m("s", "contains", json!("ell"), json!({"s": "hello"})));
        assert!(!m("s", "contains", json!("ELL"), json!({"s": "hello"})));
        assert!(m("l", "contains", json!("a"), json!({"l": ["a", "b"]})));
        assert!(!m("l", "contains", json!("c"), json!({"l": ["a", "b"]})));
        assert!(!m("l", "contains", json!("a"), json!({})));
    }

    #[test]
    fn not_contains_is_the_negation_and_matches_missing_fields() {
        assert!(m("s", "notContains", json!("x"), json!({"s": "hello"})));
        assert!(!m("s", "notContains", json!("ell"), json!({"s": "hello"})));
        assert!(!m("l", "notContains", json!("a"), json!({"l": ["a"]})));
        assert!(m("l", "notContains", json!("a"), json!({})));
    }

    #[test]
    fn begins_with_compares_string_prefixes_literally() {
        assert!(m("t", "beginsWith", json!("chat/"), json!({"t": "chat/1"})));
        assert!(!m(
            "t",
            "beginsWith",
            json!("Chat/"),
            json!({"t": "chat/1"})
        ));
        assert!(!m("t", "beginsWith", json!("*"), json!({"t": "news"})));
        assert!(m("t", "beginsWith", json!(""), json!({"t": "news"})));
        assert!(!m("t", "beginsWith", json!("1"), json!({"t": 12})));
    }

    #[test]
    fn in_and_not_in_test_membership_of_a_scalar() {
        assert!(m("g", "in", json!(["a", "b"]), json!({"g": "b"})));
        assert!(!m("g", "in", json!(["a", "b"]), json!({"g": "c"})));
        assert!(!m("g", "in", json!(["a"]), json!({"g": ["a"]})));
        assert!(m("g", "notIn", json!(["a", "b"]), json!({"g": "c"})));
        assert!(!m("g", "notIn", json!(["a", "b"]), json!({"g": "a"})));
        assert!(m("g", "notIn", json!(["a"]), json!({})));
    }

    #[test]
    fn between_is_inclusive_on_both_ends() {
        assert!(m("n", "between", json!([1, 3]), json!({"n": 1})));
        assert!(m("n", "between", json!([1, 3]), json!({"n": 3})));
        assert!(!m("n", "between", json!([1, 3]), json!({"n": 4})));
        assert!(!m("n", "between", json!([1]), json!({"n": 1})));
        assert!(m("s", "between", json!(["a", "c"]), json!({"s": "b"})));
    }

    #[test]
    fn contains_any_needs_a_common_element_of_two_lists() {
        assert!(m(
            "groups",
            "containsAny",
            json!(["x", "b"]),
            json!({"groups": ["a", "b"]})
        ));
        assert!(!m(
            "groups",
            "containsAny",
            json!(["B"]),
            json!({"groups": ["a", "b"]})
        ));
        assert!(!m(
            "groups",
            "containsAny",
            json!(["a"]),
            json!({"groups": "a"})
        ));
        assert!(!m("groups", "containsAny", json!(["a"]), json!({})));
    }

    #[test]
    fn nested_field_names_follow_the_dots() {
        assert!(m("a.b.c", "eq", json!(1), json!({"a": {"b": {"c": 1}}})));
        assert!(!m("a.b.c", "eq", json!(1), json!({"a": {"b": 1}})));
    }

    #[test]
    fn filter_group_entries_are_ored_and_conditions_anded() {
        let f = json!({"filterGroup": [
            {"filters": [{"fieldName": "a", "operator": "eq", "value": 1}, {"fieldName": "b", "operator": "eq", "value": 2}]},
            {"filters": [{"fieldName": "c", "operator": "eq", "value": 3}]}
        ]});
        assert!(filter_matches(&f, &json!({"a": 1, "b": 2})));
        assert!(!filter_matches(&f, &json!({"a": 1, "b": 3})));
        assert!(filter_matches(&f, &json!({"c": 3})));
    }

    #[test]
    fn a_malformed_filter_or_unknown_operator_delivers_nothing() {
        let p = json!({"t": "a"});
        assert!(!filter_matches(&json!({}), &p));
        assert!(!filter_matches(&json!({"filterGroup": []}), &p));
        assert!(!filter_matches(
            &json!({"filterGroup": [{"filters": []}]}),
            &p
        ));
        assert!(!m("t", "EQ", json!("a"), p.clone()));
        assert!(!m("t", "startsWith", json!("a"), p));
    }

    #[test]
    fn limits_name_each_broken_rule() {
        let ok = json!({"filterGroup": [{"filters": [{"fieldName": "groups", "operator": "containsAny", "value": ["a"]}]}]});
        assert_eq!(limit_violations(&ok), Vec::<String>::new());
        let too_many_values = one(
            "groups",
            "containsAny",
            json!((0..21).map(|i| i.to_string()).collect::<Vec<_>>()),
        );
        assert!(limit_violations(&too_many_values)[0].contains("containsAny has 21 values"));
        let long = one("t", "eq", json!("x".repeat(257)));
        assert!(limit_violations(&long)[0].contains("257 characters"));
        let exactly = one("t", "eq", json!("x".repeat(256)));
        assert!(limit_violations(&exactly).is_empty());
        let eleven = json!({"filterGroup": (0..11).map(|_| json!({"filters": [{"fieldName": "t", "operator": "eq", "value": 1}]})).collect::<Vec<_>>()});
        assert!(limit_violations(&eleven)[0].contains("11 filters"));
        let in_expands = json!({"filterGroup": [
            {"filters": [{"fieldName": "a", "operator": "in", "value": [1, 2, 3, 4, 5]}]},
            {"filters": [{"fieldName": "b", "operator": "in", "value": [1, 2, 3, 4, 5]}]},
            {"filters": [{"fieldName": "c", "operator": "eq", "value": 1}]}
        ]});
        assert!(limit_violations(&in_expands)[0].contains("11 filters (in expanded)"));
        let six_in = one("a", "in", json!([1, 2, 3, 4, 5, 6]));
        assert!(limit_violations(&six_in)[0].contains("at most 5 values"));
        let six_fields = json!({"filterGroup": [{"filters": (0..6).map(|i| json!({"fieldName": format!("f{i}"), "operator": "eq", "value": 1})).collect::<Vec<_>>()}]});
        assert!(limit_violations(&six_fields)[0].contains("6 conditions"));
        let deep = one("a.b.c.d.e.f", "eq", json!(1));
        assert!(limit_violations(&deep)[0].contains("nests more than 5"));
        assert!(
            limit_violations(&one("a", "like", json!(1)))[0].contains("not an AppSync operator")
        );
        assert!(limit_violations(&json!({"filterGroup": []}))[0].contains("empty"));
        assert!(limit_violations(&one("a", "between", json!([1])))[0].contains("between"));
        let repeated = json!({"filterGroup": [{"filters": [{"fieldName": "a", "operator": "eq", "value": 1}, {"fieldName": "a", "operator": "ne", "value": 2}]}]});
        assert!(limit_violations(&repeated)[0].contains("repeats"));
    }
}
