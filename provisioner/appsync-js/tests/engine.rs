//! The engine's own rules, with small handlers written for each: loading, verdicts, `util`, the
//! publish rules and the limits. The rendered handler is proven against Node in `parity.rs`.

use std::time::{Duration, Instant};

use groupcast_appsync_js::{
    Clock, CognitoIdentity, Ctx, Handler, Identity, IncomingEvent, Limits, LoadError,
    PublishVerdict, Verdict,
};
use serde_json::json;

const IMPORT: &str = "import { util } from '@aws-appsync/utils';\n";

fn handler(body: &str) -> Handler {
    Handler::load(&format!("{IMPORT}{body}")).unwrap_or_else(|e| panic!("load failed: {e}"))
}

fn sub(channel: &str) -> Ctx {
    Ctx::subscribe(Identity::ApiKey, channel)
}

fn events() -> Vec<IncomingEvent> {
    vec![
        IncomingEvent {
            id: "e1".into(),
            payload: json!({"n": 1}),
        },
        IncomingEvent {
            id: "e2".into(),
            payload: json!({"n": 2}),
        },
    ]
}

fn publish(handler: &Handler) -> PublishVerdict {
    handler.on_publish(&Ctx::publish(Identity::ApiKey, "/live/a", events()))
}

#[test]
fn util_unauthorized_and_util_error_reject_and_returning_allows() {
    let h = handler(
        "export function onSubscribe(ctx) {
           const s = ctx.info.channel.segments[1];
           if (s === 'no') util.unauthorized();
           if (s === 'err') util.error('bad ' + s);
         }",
    );
    assert_eq!(h.on_subscribe(&sub("/live/ok")), Verdict::Allowed);
    assert_eq!(h.on_subscribe(&sub("/live/no")), Verdict::Unauthorized);
    assert_eq!(
        h.on_subscribe(&sub("/live/err")),
        Verdict::Error("bad err".into())
    );
}

#[test]
fn a_handler_throwing_a_non_util_error_gets_an_error_verdict() {
    let h = handler("export function onSubscribe(ctx) { return ctx.identity.groups.length; }");
    let Verdict::Error(message) = h.on_subscribe(&sub("/live/a")) else {
        panic!("not an error")
    };
    assert!(
        message.contains("null") || message.contains("groups"),
        "{message}"
    );
    let thrown = handler("export function onSubscribe(ctx) { throw 'plain'; }");
    assert_eq!(
        thrown.on_subscribe(&sub("/live/a")),
        Verdict::Error("undefined".into())
    );
}

#[test]
fn the_handlers_log_lines_come_back_with_the_verdict_and_do_not_leak_into_the_next_call() {
    let h = handler(
        "export function onSubscribe(ctx) { console.log('groupcast:', 'rejected', 5); console.error('e'); util.unauthorized(); }
         export function onPublish(ctx) { return ctx.events; }",
    );
    let run = h.subscribe(&sub("/live/a"));
    assert_eq!(run.verdict, Verdict::Unauthorized);
    assert_eq!(run.logs, ["groupcast: rejected 5", "e"]);
    assert!(
        h.publish(&Ctx::publish(Identity::ApiKey, "/live/a", events()))
            .logs
            .is_empty()
    );
}

#[test]
fn on_publish_broadcasts_what_it_returns_by_appsyncs_rules() {
    let forward = handler("export function onPublish(ctx) { return ctx.events; }");
    assert_eq!(
        publish(&forward),
        PublishVerdict::Events {
            broadcast: events(),
            failed: vec![]
        }
    );
    let reshaped = handler(
        "export function onPublish(ctx) {
           return [null, { id: 'e2', payload: { ...ctx.events[1].payload, msg: 'hi' } }, { id: 'e1', payload: {}, error: 'nope' }];
         }",
    );
    let PublishVerdict::Events { broadcast, failed } = publish(&reshaped) else {
        panic!("not events")
    };
    assert_eq!(
        broadcast,
        [IncomingEvent {
            id: "e2".into(),
            payload: json!({"n": 2, "msg": "hi"})
        }]
    );
    assert_eq!(
        (failed[0].id.as_str(), failed[0].error.as_str()),
        ("e1", "nope")
    );
    let forged = handler("export function onPublish(ctx) { return [{ id: 'e9', payload: {} }]; }");
    assert!(matches!(publish(&forged), PublishVerdict::Error(m) if m.contains("e9")));
    let empty = handler("export const onPublish = (ctx) => ([]);");
    assert_eq!(
        publish(&empty),
        PublishVerdict::Events {
            broadcast: vec![],
            failed: vec![]
        }
    );
}

#[test]
fn a_missing_handler_function_allows_the_subscribe_and_forwards_the_published_events() {
    let h = handler("export function onPublish(ctx) { util.unauthorized(); }");
    assert!(!h.has_on_subscribe());
    assert_eq!(h.on_subscribe(&sub("/live/a")), Verdict::Allowed);
    assert_eq!(publish(&h), PublishVerdict::Unauthorized);
    let only_subscribe = handler("export function onSubscribe(ctx) {}");
    assert_eq!(
        publish(&only_subscribe),
        PublishVerdict::Events {
            broadcast: events(),
            failed: vec![]
        }
    );
}

#[test]
fn util_encodes_as_aws_documents_and_json_parse_returns_empty_text_on_bad_input() {
    let h = handler(
        "export function onPublish(ctx) {
           const p = ctx.events[0].payload;
           return [{ id: 'e1', payload: {
             url: util.urlEncode(p.s), back: util.urlDecode(util.urlEncode(p.s)),
             b64: util.base64Encode(p.s), unb64: util.base64Decode(util.base64Encode(p.s)),
             lone: util.urlEncode('a\\ud800b'), bad: JSON.parse('team-a'), good: JSON.parse('[1]'),
           } }];
         }",
    );
    let ctx = Ctx::publish(
        Identity::ApiKey,
        "/live/a",
        vec![IncomingEvent {
            id: "e1".into(),
            payload: json!({"s": "Team_B a/ü*"}),
        }],
    );
    let PublishVerdict::Events { broadcast, .. } = h.on_publish(&ctx) else {
        panic!("not events")
    };
    assert_eq!(
        broadcast[0].payload,
        json!({
            "url": "Team_B+a%2F%C3%BC*", "back": "Team_B a/ü*",
            "b64": "VGVhbV9CIGEvw7wq", "unb64": "Team_B a/ü*",
            "lone": "a%3Fb", "bad": "", "good": [1],
        })
    );
    let bad = handler("export function onSubscribe(ctx) { util.base64Decode('%%%'); }");
    assert!(
        matches!(bad.on_subscribe(&sub("/live/a")), Verdict::Error(m) if m.contains("not base64"))
    );
}

#[test]
fn methods_aws_does_not_list_and_code_generation_fail_the_handler() {
    for call in [
        "'abc'.includes('a')",
        "'abc'.charCodeAt(0)",
        "Array.isArray([])",
        "[1].includes(1)",
        "String.fromCharCode(65)",
        "eval('1')",
        "(function () {}).constructor('return 1')()",
        "(() => 1).constructor('return 1')()",
    ] {
        let h = handler(&format!("export function onSubscribe(ctx) {{ {call}; }}"));
        assert!(
            matches!(h.on_subscribe(&sub("/live/a")), Verdict::Error(_)),
            "{call} ran"
        );
    }
}

#[test]
fn a_runaway_handler_is_stopped_at_the_time_limit_and_the_handler_still_works_afterwards() {
    let source = format!(
        "{IMPORT}export function onSubscribe(ctx) {{ if (ctx.info.channel.segments[1] === 'loop') {{ while (true) {{}} }} }}"
    );
    let limits = Limits {
        time: Duration::from_millis(50),
        ..Limits::default()
    };
    let h = Handler::load_with(&source, limits).unwrap();
    let start = Instant::now();
    let Verdict::Error(message) = h.on_subscribe(&sub("/live/loop")) else {
        panic!("not stopped")
    };
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "took {:?}",
        start.elapsed()
    );
    assert!(message.contains("ran longer than 50ms"), "{message}");
    assert_eq!(h.on_subscribe(&sub("/live/fine")), Verdict::Allowed);
}

#[test]
fn a_runaway_handler_cannot_catch_the_interrupt() {
    let h = Handler::load_with(
        &format!("{IMPORT}export function onSubscribe(ctx) {{ for (;;) {{ try {{ while (true) {{}} }} catch (e) {{}} }} }}"),
        Limits { time: Duration::from_millis(30), ..Limits::default() },
    )
    .unwrap();
    assert!(
        matches!(h.on_subscribe(&sub("/live/a")), Verdict::Error(m) if m.contains("ran longer"))
    );
}

#[test]
fn a_handler_that_allocates_without_end_is_stopped_by_the_memory_limit() {
    let h = Handler::load_with(
        &format!("{IMPORT}export function onSubscribe(ctx) {{ let a = []; while (true) {{ a.push('x'.concat(a.length)); }} }}"),
        Limits { memory_bytes: 8 << 20, time: Duration::from_secs(20), ..Limits::default() },
    )
    .unwrap();
    let Verdict::Error(message) = h.on_subscribe(&sub("/live/a")) else {
        panic!("not stopped")
    };
    assert!(message.contains("out of memory"), "{message}");
    let deep = handler(
        "function f(n) { return f(n + 1) + 1; }\nexport function onSubscribe(ctx) { f(0); }",
    );
    let Verdict::Error(message) = deep.on_subscribe(&sub("/live/a")) else {
        panic!("not stopped")
    };
    assert!(message.contains("stack"), "{message}");
}

#[test]
fn a_runaway_module_body_fails_the_load_instead_of_hanging() {
    let source = format!("{IMPORT}while (true) {{}}\nexport function onSubscribe(ctx) {{}}");
    let limits = Limits {
        time: Duration::from_millis(30),
        ..Limits::default()
    };
    assert!(
        matches!(Handler::load_with(&source, limits), Err(LoadError::Evaluation(m)) if m.contains("ran longer"))
    );
}

#[test]
fn a_handler_must_import_util_once_as_documented_and_export_only_the_two_functions() {
    let fine = "export function onSubscribe(ctx) {}";
    assert_eq!(
        Handler::load(fine).unwrap_err(),
        LoadError::Import { found: 0 }
    );
    assert_eq!(
        Handler::load(&format!("{IMPORT}{IMPORT}{fine}")).unwrap_err(),
        LoadError::Import { found: 2 }
    );
    let other = format!("{IMPORT}import {{ x }} from 'fs';\n{fine}");
    assert!(matches!(Handler::load(&other), Err(LoadError::OtherImport(m)) if m.contains("fs")));
    let extra = format!("{IMPORT}{fine}\nexport const helper = 1;");
    assert!(matches!(Handler::load(&extra), Err(LoadError::Export(m)) if m.contains("helper")));
    let not_fn = format!("{IMPORT}export const onPublish = 5;");
    assert!(matches!(Handler::load(&not_fn), Err(LoadError::Export(m)) if m.contains("onPublish")));
    let broken = format!("{IMPORT}export function onSubscribe(ctx) {{");
    assert!(matches!(Handler::load(&broken), Err(LoadError::Syntax(_))));
    let throws = format!("{IMPORT}throw new Error('top');\n{fine}");
    assert!(matches!(Handler::load(&throws), Err(LoadError::Evaluation(m)) if m.contains("top")));
}

#[test]
fn a_cognito_identity_reaches_the_handler_in_appsyncs_shape() {
    let h = handler(
        "export function onSubscribe(ctx) {
           if (ctx.identity.groups[0] !== 'team-a' || ctx.identity.issuer !== 'iss' || ctx.info.channelNamespace.name !== 'live'
               || ctx.info.operation !== 'SUBSCRIBE' || ctx.request.headers['x-h'] !== 'v') util.unauthorized();
         }",
    );
    let identity = Identity::Cognito(CognitoIdentity {
        issuer: "iss".into(),
        groups: Some(vec!["team-a".into()]),
        ..Default::default()
    });
    let mut ctx = Ctx::subscribe(identity, "/live/team-a");
    ctx.headers.insert("x-h".into(), "v".into());
    assert_eq!(h.on_subscribe(&ctx), Verdict::Allowed);
}

#[test]
fn util_time_now_epoch_seconds_reads_the_system_clock_unless_a_fixed_clock_is_set() {
    let h = handler(
        "export function onPublish(ctx) {\n  const t = util.time.nowEpochSeconds();\n  \
         return [{ id: 'e1', payload: { t: t, whole: Math.floor(t) === t } }];\n}",
    );
    let seconds =
        |h: &Handler| match h.on_publish(&Ctx::publish(Identity::ApiKey, "/live/a", events())) {
            PublishVerdict::Events { broadcast, .. } => {
                assert_eq!(broadcast[0].payload["whole"], true, "whole seconds");
                broadcast[0].payload["t"].as_f64().unwrap()
            }
            other => panic!("{other:?}"),
        };
    let system = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!((seconds(&h) - system).abs() < 5.0, "the system clock");
    h.set_clock(Clock::Fixed(1_795_000_000));
    assert_eq!(seconds(&h), 1_795_000_000.0);
    h.set_clock(Clock::System);
    assert!(
        (seconds(&h) - system).abs() < 5.0,
        "back to the system clock"
    );
}

#[test]
fn a_handler_can_move_to_another_thread() {
    fn send<T: Send>(_: &T) {}
    let h = handler("export function onSubscribe(ctx) { util.unauthorized(); }");
    send(&h);
    let verdict = std::thread::spawn(move || h.on_subscribe(&sub("/live/a")))
        .join()
        .unwrap();
    assert_eq!(verdict, Verdict::Unauthorized);
}

#[test]
fn a_handler_cannot_replace_the_engines_handles_or_the_builtins_it_reads_results_with() {
    let h = handler(
        "export function onSubscribe(ctx) {
           JSON.stringify = () => '[]';
           Array.prototype.join = () => 'forged';
           if (ctx.info.channel.segments[1] === 'grab') globalThis.__groupcast_appsync_js_engine = null;
           console.log('a', 'b');
           util.unauthorized();
         }
         export function onPublish(ctx) { return ctx.events; }",
    );
    let grab = h.subscribe(&sub("/live/grab"));
    assert!(
        matches!(grab.verdict, Verdict::Error(_)),
        "{:?}",
        grab.verdict
    );
    let run = h.subscribe(&sub("/live/a"));
    assert_eq!(
        (run.verdict, run.logs),
        (Verdict::Unauthorized, vec!["a b".to_owned()])
    );
    assert_eq!(
        publish(&h),
        PublishVerdict::Events {
            broadcast: events(),
            failed: vec![]
        }
    );
}
