//! `publish`: a tiny command line around [`groupcast::Publisher`], for trying a deployment and for the
//! end-to-end test (tests/e2e). Configuration comes only from `Publisher::from_env()` (the `GROUPCAST_*`
//! variables, docs/publishing.md); the arguments name one message. Prints the `PublishReport` as JSON
//! on stdout and exits 0 when every (group, transport) was delivered, 1 when any failed, 2 on an error.
//!
//! ```text
//! cargo run -p groupcast --example publish -- --topic T --group G [--group H ...] [--data '{"k":1}']
//! ```

use std::process::ExitCode;

use groupcast::{Message, Publisher};

const USAGE: &str = "usage: publish --topic TOPIC --group GROUP [--group GROUP ...] [--data JSON]";

/// The message the arguments describe. Plain `std::env::args` parsing: the example has three flags,
/// and clap is not among the crate's dependencies.
fn parse(args: impl Iterator<Item = String>) -> Result<Message, String> {
    let (mut topic, mut groups, mut data) = (None, Vec::new(), serde_json::Value::Null);
    let mut args = args;
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{flag}: missing value\n{USAGE}"))
        };
        match flag.as_str() {
            "--topic" => topic = Some(value()?),
            "--group" => groups.push(value()?),
            "--data" => {
                data = serde_json::from_str(&value()?)
                    .map_err(|e| format!("--data: not JSON: {e}"))?;
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("{other}: unknown argument\n{USAGE}")),
        }
    }
    let topic = topic.ok_or_else(|| format!("--topic is required\n{USAGE}"))?;
    Message::builder(topic)
        .data(data)
        .groups(groups)
        .build()
        .map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    let msg = match parse(std::env::args().skip(1)) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("publish: {e}");
            return ExitCode::from(2);
        }
    };
    let publisher = match Publisher::from_env().await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("publish: configuration: {e}");
            return ExitCode::from(2);
        }
    };
    match publisher.publish(&msg).await {
        Ok(report) => {
            let json = serde_json::to_string(&report).expect("a PublishReport serializes");
            println!("{json}");
            if report.is_complete() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("publish: {e}");
            ExitCode::from(2)
        }
    }
}
