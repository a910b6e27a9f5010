//! Micro-benchmark: `onSubscribe` invocations per second of a rendered handler in the embedded
//! engine, for an admitted and a refused subscribe.
//!
//! ```text
//! target/debug/provisioner render --config tests/harness/configs/harness.toml --out /tmp/r
//! cargo run --release -p groupcast-appsync-js --example subscribe_rate -- /tmp/r/events/live.js
//! ```

use std::time::Instant;

use groupcast_appsync_js::{CognitoIdentity, Ctx, Handler, Identity, Verdict};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .ok_or("usage: subscribe_rate RENDERED/events/NAMESPACE.js")?;
    let handler = Handler::load(&std::fs::read_to_string(&path)?)?;
    let issuer = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123";
    let identity = Identity::Cognito(CognitoIdentity {
        sub: "s1".into(),
        issuer: issuer.into(),
        username: "alice".into(),
        groups: Some(vec!["team-b".into(), "Team_B".into(), "team-a".into()]),
        source_ip: vec!["1.2.3.4".into()],
        ..Default::default()
    });
    let namespace = path
        .rsplit('/')
        .next()
        .unwrap_or("live.js")
        .trim_end_matches(".js")
        .to_owned();
    for (label, channel) in [("admitted", "team-a/chat"), ("refused", "team-c/chat")] {
        let ctx = Ctx::subscribe(identity.clone(), format!("/{namespace}/{channel}"));
        let first = handler.on_subscribe(&ctx);
        let n = 20_000;
        let start = Instant::now();
        for _ in 0..n {
            let v = handler.on_subscribe(&ctx);
            debug_assert_eq!(v, first);
        }
        let secs = start.elapsed().as_secs_f64();
        let admitted = first == Verdict::Allowed;
        println!(
            "{label:8} ({}): {:.0} onSubscribe/s ({:.1} µs each)",
            if admitted { "Allowed" } else { "refused" },
            f64::from(n) / secs,
            secs * 1e6 / f64::from(n)
        );
    }
    Ok(())
}
