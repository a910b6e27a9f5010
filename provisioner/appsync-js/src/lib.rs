//! Runs a rendered AppSync Events handler (`provisioner render`'s `events/NAMESPACE.js`, the
//! APPSYNC_JS runtime) in an embedded JavaScript engine, so the local stack (issue 11) applies the
//! same `onSubscribe` / `onPublish` rules as AppSync.
//!
//! - [`Handler::load`] evaluates the module (its one import, `util` from `@aws-appsync/utils`, handled
//!   as the isolation harness does) under [`Limits`] of time, memory and stack.
//! - [`Handler::on_subscribe`] gives a [`Verdict`], [`Handler::on_publish`] a [`PublishVerdict`] with
//!   the events to broadcast; [`Handler::subscribe`] / [`Handler::publish`] add the handler's log lines.
//! - [`Ctx`] builds AppSync's `ctx` from Rust types, per auth mode ([`Identity`]).
//! - `util` has the documented encoding functions and `unauthorized` / `error`
//!   (https://docs.aws.amazon.com/appsync/latest/eventapi/built-in-util.html), and
//!   `util.time.nowEpochSeconds()` (APPSYNC_JS's time helpers,
//!   https://docs.aws.amazon.com/appsync/latest/devguide/time-helpers-in-util-time-js.html) from a
//!   [`Clock`] ([`Handler::set_clock`]; the system clock by default), with the semantics of
//!   the harness's Node `util` (tests/harness/lib/handler.js); `tests/parity.rs` proves the engine
//!   and Node agree on every case of the harness's adversarial corpus.
//!
//! Where the harness's Node runner and AWS's documentation part, this crate follows the docs (none
//! of it changes a verdict of the rendered handler, which uses neither):
//! - `util.urlDecode`, `util.base64Encode`, `util.base64Decode` (built-in-util.html) and
//!   `console.error` (runtime-supported-features.html) exist here; the harness has none of them.
//! - The handler is evaluated as an ES module (strict), so `export const onPublish = (ctx) => ([])`,
//!   an example of writing-event-handlers.html, loads; the harness rewrites `export function` into
//!   a sloppy script and refuses other exports.
//! - `util.error(msg)` keeps the message only, as the Events docs show it; the harness also keeps a
//!   second argument as an error type.
//!
//! ```
//! use groupcast_appsync_js::{Ctx, Handler, Identity, Verdict};
//!
//! let source = "import { util } from '@aws-appsync/utils';\n\
//!               export function onSubscribe(ctx) { if (ctx.identity === null) util.unauthorized(); }";
//! let handler = Handler::load(source).unwrap();
//! assert_eq!(handler.on_subscribe(&Ctx::subscribe(Identity::ApiKey, "/live/a")), Verdict::Unauthorized);
//! ```

mod ctx;
mod engine;
mod util;
mod verdict;

pub use ctx::{
    CognitoIdentity, Ctx, IamIdentity, Identity, IncomingEvent, LambdaIdentity, OidcIdentity,
    Operation,
};
pub use engine::{Clock, Handler, Invocation, Limits, LoadError, UTIL_IMPORT};
pub use verdict::{FailedEvent, PublishVerdict, Verdict, WireError};
