//! The interpreter's own tests: each Velocity feature the templates use, the errors AppSync
//! raises, the `$extensions` capture, and the no-panic property over random text and contexts.

use proptest::prelude::*;
use serde_json::{Value as Json, json};

use crate::{AuthType, Context, Outcome, evaluate, unsupported};

fn run(t: &str) -> Outcome {
    evaluate(t, &Context::default())
}

/// The rendered text of a template that raises no error (text that is not JSON is allowed here:
/// these tests look at the text, and only its conversion to a result fails).
fn out(t: &str) -> String {
    let o = run(t);
    if let Some(e) = &o.error {
        assert!(e.message.starts_with("Unable to convert "), "{t}: {e:?}");
    }
    o.output.trim().to_string()
}

fn with_args(args: Json) -> Context {
    Context {
        arguments: args,
        ..Context::default()
    }
}

#[test]
fn set_and_references_render_their_values_and_null_renders_the_reference_text() {
    assert_eq!(out("#set($a = 'x')$a ${a} $!b $b"), "x x  $b");
    assert_eq!(out("#set($n = 2 + 3 * 4)$n"), "14");
    assert_eq!(
        out("#set($m = {'k': [1, 2.5, true, null]})$m"),
        "{k=[1, 2.5, true, null]}"
    );
}

#[test]
fn double_quoted_strings_interpolate_and_single_quoted_do_not() {
    assert_eq!(
        out(r#"#set($g = "a")#set($s = "group $g of $groups.size()")#set($t = '$g')$s|$t"#),
        "group a of $groups.size()|$g"
    );
    assert_eq!(out(r#"#set($l = [1,2])"n=$l.size()""#), r#""n=2""#);
}

#[test]
fn if_elseif_else_choose_one_branch_and_only_null_and_false_are_false() {
    let t = "#if($x == 1)one#elseif($x == 2)two#{else}other#end";
    assert_eq!(out(&format!("#set($x = 2){t}")), "two");
    assert_eq!(out(&format!("#set($x = 9){t}")), "other");
    assert_eq!(
        out("#if('')yes#end #if(0)zero#end #if($nope)no#end"),
        "yes zero"
    );
    assert_eq!(out("#if(!$nope && true || false)ok#end"), "ok");
}

#[test]
fn foreach_iterates_lists_with_has_next_and_scopes_its_variable() {
    assert_eq!(
        out("#foreach($x in [1, 2, 3])$x#if($foreach.hasNext),#end#end [$x]"),
        "1,2,3 [$x]"
    );
    assert_eq!(out("#foreach($i in [1..3])$i#end"), "123");
    assert_eq!(out("#foreach($i in [3..1])$i#end"), "321");
    assert_eq!(
        out("#foreach($i in [1..5])#if($i > 2)#break#end$i#end"),
        "12"
    );
    assert_eq!(out("#foreach($v in {'a': 1, 'b': 2})$v#end"), "12");
}

#[test]
fn comments_and_unparsed_blocks_are_not_evaluated() {
    assert_eq!(
        out("a## $util.error('x')\nb#* $util.error('y') *#c#[[$x #if]]#"),
        "abc$x #if"
    );
}

#[test]
fn lists_are_shared_references_with_java_methods() {
    let t = "#set($a = [])#set($b = $a)$util.qr($b.add('x'))$util.qr($a.addAll(['y', 'x']))\
             $a.size() $a.contains('y') $a.contains('z') $a.isEmpty() $a.get(1) $a.indexOf('x') $b";
    assert_eq!(out(t), "3 true false false y 0 [x, y, x]");
    assert_eq!(out("#set($a = [])$a.add(1)"), "true");
}

#[test]
fn maps_get_put_and_property_access() {
    let t = "#set($m = {})$util.qr($m.put('k', 'v'))#set($m.j = 2)$m.get('k') $m.k $m.j $m.size() $m.containsKey('j') $m.keySet()";
    assert_eq!(out(t), "v v 2 2 true [k, j]");
}

#[test]
fn strings_have_java_methods_and_length_counts_utf16_units() {
    let t = "#set($s = 'arn:aws:sts::1:assumed-role/r/s')$s.length() $s.lastIndexOf('/') $s.startsWith('arn:') $s.endsWith('/s') $s.equals('x') $s.substring(4, 7) $s.contains('role') $s.indexOf(':')";
    assert_eq!(out(t), "31 29 true true false aws true 3");
    let ctx = with_args(json!({"g": "😀a"}));
    assert_eq!(evaluate("$ctx.args.g.length()", &ctx).output, "3");
    assert_eq!(
        out("#set($s = '  x ')[$s.trim()] $s.toUpperCase() $s.isEmpty()"),
        "[x]   X  false"
    );
}

#[test]
fn comparisons_and_arithmetic_follow_velocity() {
    assert_eq!(
        out("#if(1 < 2 && 2 <= 2 && 3 > 2 && 3 >= 3 && 1 == 1.0 && 'a' != 'b')ok#end"),
        "ok"
    );
    // Velocity compares values of different types by their text, and orders only numbers.
    assert_eq!(
        out("#if(1 == '1')same#end #if('a' < 'b')lt#else no#end"),
        "same  no"
    );
    assert_eq!(
        out("#set($x = 7 / 2)$x #set($y = 7 % 3)$y #set($z = -(2))$z"),
        "3 1 -2"
    );
    assert_eq!(out("#set($d = 1 / 0)$!d|"), "|");
}

#[test]
fn ctx_and_context_expose_arguments_identity_source_result_and_stash() {
    let ctx = Context {
        arguments: json!({"topic": "t"}),
        identity: json!({"claims": {"cognito:groups": ["a"]}}),
        result: json!({"r": 1}),
        ..Context::default()
    };
    let o = evaluate(
        "$ctx.args.topic $context.arguments.topic $ctx.identity.claims.get('cognito:groups') $ctx.result.r $util.toJson($ctx.source)$util.qr($ctx.stash.put('k', 1))",
        &ctx,
    );
    assert_eq!(o.output, "t t [a] 1 null");
    assert_eq!(o.stash, json!({"k": 1}));
}

#[test]
fn util_error_stops_evaluation_with_its_type_and_message() {
    let o = run("before $util.error('no access', 'Unauthorized', {'a': 1}) after");
    let e = o.error.unwrap();
    assert_eq!(e.error_type.as_deref(), Some("Unauthorized"));
    assert_eq!(e.message, "no access");
    assert_eq!(e.data, json!({"a": 1}));
    assert_eq!(o.json, None);
    assert!(!o.output.contains("after"));
    let untyped = run("$util.error('m')").error.unwrap();
    assert_eq!(untyped.error_type, None);
}

#[test]
fn util_unauthorized_names_the_field_when_info_is_given() {
    let e = run("$util.unauthorized()").error.unwrap();
    assert_eq!(
        (e.error_type.as_deref(), e.message.as_str()),
        (Some("Unauthorized"), "Unauthorized")
    );
    let ctx = Context {
        info: json!({"fieldName": "publish", "parentTypeName": "Mutation"}),
        ..Context::default()
    };
    let e = evaluate("$util.unauthorized()", &ctx).error.unwrap();
    assert_eq!(
        e.message,
        "Not Authorized to access publish on type Mutation"
    );
}

#[test]
fn util_validate_and_append_error() {
    let e = run("$util.validate(false, 'bad')").error.unwrap();
    assert_eq!(e.error_type.as_deref(), Some("CustomTemplateException"));
    assert_eq!(run("$util.validate(true, 'bad'){}").error, None);
    let o = run("$util.appendError('a', 'T'){}");
    assert_eq!(o.error, None);
    assert_eq!(o.appended_errors[0].message, "a");
}

#[test]
fn util_predicates_and_defaults() {
    let ctx = with_args(
        json!({"s": "x", "e": "", "b": "  ", "l": [], "m": {}, "n": 1, "t": true, "z": null}),
    );
    let t = "$util.isNull($ctx.args.z) $util.isNull($ctx.args.missing) $util.isNull($ctx.args.e) \
             $util.isNullOrEmpty($ctx.args.e) $util.isNullOrEmpty($ctx.args.b) $util.isNullOrBlank($ctx.args.b) \
             $util.isNullOrEmpty($ctx.args.l) $util.isString($ctx.args.s) $util.isString($ctx.args.n) \
             $util.isList($ctx.args.l) $util.isMap($ctx.args.m) $util.isNumber($ctx.args.n) $util.isBoolean($ctx.args.t) \
             $util.typeOf($ctx.args.l) $util.defaultIfNull($ctx.args.z, 'd') $util.defaultIfNullOrEmpty($ctx.args.e, 'd') \
             $util.defaultIfNullOrBlank($ctx.args.b, 'd')";
    assert_eq!(
        evaluate(t, &ctx).output,
        "true true false true false true true true false true true true true List d d d"
    );
}

#[test]
fn util_json_round_trips_and_bad_json_fails_the_request() {
    let ctx = with_args(json!({"t": "[\"a\",1]", "bad": "[a"}));
    assert_eq!(
        evaluate("#set($l = $util.parseJson($ctx.args.t))$l.size() $util.toJson($l) $util.toJson({'k': \"v\"})", &ctx).output,
        r#"2 ["a",1] {"k":"v"}"#
    );
    let e = evaluate("$util.parseJson($ctx.args.bad)", &ctx)
        .error
        .unwrap();
    assert_eq!(e.error_type.as_deref(), Some("MappingTemplate"));
}

#[test]
fn util_matches_the_whole_string_and_auth_type_names_the_mode() {
    assert_eq!(
        out(
            "$util.matches('^[a-f]+$', 'abc') $util.matches('b', 'abc') $util.matches('a.c', 'abc')"
        ),
        "true false true"
    );
    for (a, s) in [
        (AuthType::Iam, "IAM Authorization"),
        (AuthType::UserPool, "User Pool Authorization"),
        (AuthType::Oidc, "Open ID Connect Authorization"),
        (AuthType::Lambda, "Lambda Authorization"),
        (AuthType::ApiKey, "API Key Authorization"),
    ] {
        let ctx = Context {
            auth_type: a,
            ..Context::default()
        };
        assert_eq!(evaluate("$util.authType()", &ctx).output, s);
    }
}

#[test]
fn auto_id_is_a_v4_uuid_unless_fixed() {
    let id = out("$util.autoId()");
    assert!(
        uuid::Uuid::parse_str(&id).is_ok_and(|u| u.get_version_num() == 4),
        "{id}"
    );
    fn fixed() -> String {
        "fixed".into()
    }
    let ctx = Context {
        auto_id: fixed,
        ..Context::default()
    };
    assert_eq!(evaluate("$util.autoId()", &ctx).output, "fixed");
}

#[test]
fn extensions_calls_are_captured_in_order_and_render_nothing() {
    let o = run(
        "$extensions.setSubscriptionFilter({'filterGroup': [{'filters': [{'fieldName': 'groups', 'operator': 'containsAny', 'value': ['a']}]}]})\
         $extensions.setSubscriptionInvalidationFilter({'filterGroup': []})\
         $extensions.invalidateSubscriptions({'subscriptionField': 'subscribe', 'payload': {'group': 'a'}})\
         $util.toJson(null)",
    );
    assert_eq!(o.error, None);
    assert_eq!(o.output.trim(), "null");
    assert_eq!(o.json, Some(Json::Null));
    assert_eq!(
        o.extensions.subscription_filters[0]["filterGroup"][0]["filters"][0]["value"],
        json!(["a"])
    );
    assert_eq!(
        o.extensions.subscription_invalidation_filters,
        vec![json!({"filterGroup": []})]
    );
    assert_eq!(
        o.extensions.invalidate_subscriptions[0]["payload"],
        json!({"group": "a"})
    );
}

#[test]
fn return_ends_the_template_with_its_value() {
    let o = run("#set($x = {'a': 1})#return($x) never");
    assert!(o.returned);
    assert_eq!(o.json, Some(json!({"a": 1})));
    let o = run("#return");
    assert!(o.returned);
    assert_eq!(o.json, Some(Json::Null));
}

#[test]
fn output_that_is_not_json_is_a_mapping_template_error() {
    let e = run("not json").error.unwrap();
    assert_eq!(e.error_type.as_deref(), Some("MappingTemplate"));
    assert!(
        e.message.starts_with("Unable to convert not json"),
        "{}",
        e.message
    );
    assert_eq!(run(" {\"a\": [1]} ").json, Some(json!({"a": [1]})));
}

#[test]
fn a_template_that_does_not_parse_is_an_error_naming_the_place() {
    for t in [
        "#if($a)",
        "#end",
        "#set($a = )",
        "$a.b(",
        "#foreach($a [1])#end",
        "#else",
        "#set($a = 'x)",
    ] {
        let e = run(t).error.unwrap_or_else(|| panic!("{t} parsed"));
        assert_eq!(e.error_type.as_deref(), Some("MappingTemplate"), "{t}");
        assert!(e.message.contains("line 1"), "{t}: {}", e.message);
    }
}

#[test]
fn text_dollars_and_hashes_that_start_nothing_are_text() {
    assert_eq!(out("\"a#b $ 5$ #ending $1\""), "\"a#b $ 5$ #ending $1\"");
}

#[test]
fn runaway_templates_end_in_an_error_not_a_hang() {
    let e = run("#set($l = [1])#foreach($i in [1..100])$util.qr($l.addAll($l))#end")
        .error
        .unwrap();
    assert!(e.message.contains("limits"), "{}", e.message);
    let e = run("#set($s = 'xxxxxxxxxxxxxxxx')#foreach($i in [1..40])#set($s = \"$s$s\")#end")
        .error
        .unwrap();
    assert!(e.message.contains("limits"), "{}", e.message);
    let e = run("#foreach($i in [1..999999999999])#end").error.unwrap();
    assert!(e.message.contains("limits"), "{}", e.message);
    // A list that holds itself renders within bounds.
    let o = run("#set($l = [])$util.qr($l.add($l))$util.qr($l.add($l))$l");
    assert!(o.error.is_some());
}

#[test]
fn deep_nesting_is_a_parse_error_not_a_stack_overflow() {
    let t = format!("#set($a = {}1{})", "(".repeat(10_000), ")".repeat(10_000));
    assert!(run(&t).error.unwrap().message.contains("nesting"));
    let t = "#if(true)".repeat(5_000);
    assert!(run(&t).error.is_some());
}

#[test]
fn unsupported_accepts_the_subset_and_names_what_is_outside_it() {
    assert_eq!(
        unsupported("#set($a = [])$util.qr($a.add(1))$ctx.args.x $foreach.hasNext").unwrap(),
        Vec::<String>::new()
    );
    let found =
        unsupported("$util.str.toUpper('a') $ctx.nope $x.frobnicate() $foreach.velocityCount")
            .unwrap();
    assert_eq!(found.len(), 4, "{found:?}");
    assert!(unsupported("#if(").is_err());
}

/// Random JSON, for contexts.
fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        (-1e6f64..1e6).prop_map(|f| json!(f)),
        "[a-z$#\"'{}\\[\\]() .!-]{0,12}".prop_map(Json::String),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Json::Array),
            prop::collection::vec(("[a-z:]{1,6}", inner), 0..5)
                .prop_map(|kv| Json::Object(kv.into_iter().collect())),
        ]
    })
}

/// Pieces of Velocity, for random templates that often parse and exercise the evaluator.
fn template_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("#set($a = ".to_string()),
        Just("#if(".to_string()),
        Just("#elseif(".to_string()),
        Just("#else".to_string()),
        Just("#end".to_string()),
        Just("#foreach($x in ".to_string()),
        Just("#return(".to_string()),
        Just("#break".to_string()),
        Just("$ctx.args.a".to_string()),
        Just("$ctx.identity.claims.get('g')".to_string()),
        Just("$a.add($a)".to_string()),
        Just("$a.addAll($a)".to_string()),
        Just("$a.size()".to_string()),
        Just("$a.substring(1, 3)".to_string()),
        Just("$a.get(0)".to_string()),
        Just("$util.toJson($a)".to_string()),
        Just("$util.parseJson($a)".to_string()),
        Just("$util.error($a, 'T')".to_string()),
        Just("$util.matches('[', $a)".to_string()),
        Just("$extensions.setSubscriptionFilter($a)".to_string()),
        Just("$foreach.hasNext".to_string()),
        Just("[1..3]".to_string()),
        Just("{'k': $a}".to_string()),
        Just("\"$a\"".to_string()),
        Just(")".to_string()),
        Just(" && ".to_string()),
        Just(" == ".to_string()),
        Just(" / 0".to_string()),
        Just("##".to_string()),
        Just("#*".to_string()),
        Just("\n".to_string()),
        "[ -~]{0,6}",
    ];
    prop::collection::vec(piece, 0..24).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_templates_and_contexts_end_in_an_outcome_never_a_panic(
        text in template_text(),
        args in json_value(),
        identity in json_value(),
    ) {
        let ctx = Context { arguments: args, identity, ..Context::default() };
        let o = evaluate(&text, &ctx);
        prop_assert!(o.json.is_some() || o.error.is_some());
    }

    #[test]
    fn arbitrary_text_never_panics_the_parser_or_the_evaluator(text in "\\PC{0,64}") {
        let _ = unsupported(&text);
        let o = evaluate(&text, &Context::default());
        prop_assert!(o.json.is_some() || o.error.is_some());
    }
}

#[test]
fn to_subscription_filter_builds_filter_groups_from_maps_with_or_and_and_ignored_fields() {
    let ctx = with_args(json!({"g": ["a", "b"]}));
    let t = r#"$util.toJson($util.transform.toSubscriptionFilter({"groups": {"containsAny": $ctx.args.g}, "topic": {"eq": "x", "beginsWith": "y"}, "uuid": {"eq": 1}, "or": [{"a": {"eq": 1}}, {"b": {"eq": 2}}]}, ["uuid"]))"#;
    let c = |f: &str, o: &str, v: Json| json!({"fieldName": f, "operator": o, "value": v});
    let g = c("groups", "containsAny", json!(["a", "b"]));
    let (tx, ty) = (
        c("topic", "eq", json!("x")),
        c("topic", "beginsWith", json!("y")),
    );
    let (a, b) = (c("a", "eq", json!(1)), c("b", "eq", json!(2)));
    let want = json!({"filterGroup": [
        {"filters": [g, tx, a]}, {"filters": [g, tx, b]}, {"filters": [g, ty, a]}, {"filters": [g, ty, b]}
    ]});
    assert_eq!(evaluate(t, &ctx).json, Some(want));
    assert_eq!(unsupported(t).unwrap(), Vec::<String>::new());
    let e = run(
        "#set($o = {'or': [{'a': {'eq': 1, 'ne': 2, 'gt': 3, 'lt': 4, 'le': 5, 'ge': 6, 'in': 7, 'notIn': 8, 'contains': 9, 'between': 10}}]})#set($m = {'and': [$o, $o, $o, $o, $o]})$util.transform.toSubscriptionFilter($m)",
    );
    assert!(e.error.unwrap().message.contains("limits"));
}

#[test]
fn deeply_nested_values_built_by_a_loop_are_dropped_without_overflowing_the_stack() {
    let o = run("#set($a = [])#foreach($i in [1..300000])#set($a = [$a])#end{}");
    assert!(o.error.is_some() || o.json.is_some());
    let o = run("#set($m = {})#foreach($i in [1..300000])#set($m = {'k': $m})#end$util.toJson($m)");
    assert!(o.error.is_some());
}

#[test]
fn extensions_limits_count_unique_invalidations_and_check_each_filter() {
    let five = (0..5)
        .map(|i| format!("$extensions.invalidateSubscriptions({{'subscriptionField': 'subscribe', 'payload': {{'g': {i}}}}})"))
        .collect::<String>();
    let o = run(&format!(
        "{five}$extensions.invalidateSubscriptions({{'subscriptionField': 'subscribe', 'payload': {{'g': 0}}}})null"
    ));
    assert_eq!(
        o.extensions.limit_violations(),
        Vec::<String>::new(),
        "a repeated call is not a new one"
    );
    let o = run(&format!(
        "{five}$extensions.invalidateSubscriptions({{'subscriptionField': 'subscribe', 'payload': {{'g': 5}}}})null"
    ));
    assert!(o.extensions.limit_violations()[0].contains("6 unique calls"));
    let o = run("$extensions.setSubscriptionFilter({'filterGroup': []})null");
    assert!(
        o.extensions.limit_violations()[0]
            .starts_with("setSubscriptionFilter call 1: filterGroup is empty")
    );
}
