'use strict';
// Time-sliced Events channels (issue 14, groupcast::epoch): a namespace with epoch_seconds admits, in onSubscribe
// and onPublish, only /{namespace}/{group segment}/t{N}/... with N within one epoch of the server's clock
// (util.time.nowEpochSeconds(), set here per case). The handler's JavaScript copy of the epoch rule must agree with
// tests/fixtures/epoch-segments.json, and a namespace without epochs behaves as before beside it.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { render } = require('./lib/render');
const { load, eventsCtx } = require('./lib/handler');
const { lintHandler } = require('./lib/lint');
const { checkAppsyncJs } = require('./lib/appsync-js');
const C = require('./lib/events-corpus');

const files = render('epochs.toml');
const handlers = Object.fromEntries(['live', 'fast', 'minute', 'daily', 'plain'].map((ns) => [ns, load(files[`events/${ns}.js`])]));
const live = handlers.live;
const BY_PERIOD = { 300: 'live', 2: 'fast', 60: 'minute', 86400: 'daily' };
const table = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'fixtures', 'epoch-segments.json'), 'utf8'));

function judge(r, expected, what) {
  if (expected === true) {
    assert.equal(r.allowed, true, `refused: ${r.reason}`);
  } else {
    assert.equal(r.allowed, false, `ADMITTED ${what}`);
    assert.match(r.reason, expected, `refused for another reason: ${r.reason}`);
  }
}

for (const [attack, identity, channel, now, expected] of C.epochCorpus) {
  test(`epochs onSubscribe: ${attack}`, () => {
    live.setNow(now);
    judge(live.subscribe(eventsCtx({ path: channel, identity })), expected, `${channel} at ${now}`);
  });
}

for (const [attack, identity, channel, now, expected] of C.epochPublishCorpus) {
  test(`epochs onPublish: ${attack}`, () => {
    live.setNow(now);
    const r = live.publish(eventsCtx({ path: channel, identity, operation: 'PUBLISH', events: C.events }));
    judge(r, expected, `${channel} at ${now}`);
    if (expected === true) assert.deepEqual(r.value, C.events, 'onPublish must forward the events unchanged');
  });
}

test('epochs: a server clock that gives no number refuses every epoch (subscribe and publish)', () => {
  for (const broken of [NaN, undefined, null, 'soon', Infinity]) {
    const h = load(files['events/live.js'], { now: broken });
    for (const n of [C.EPOCH_N - 1, C.EPOCH_N, C.EPOCH_N + 1, 0]) {
      const s = h.subscribe(eventsCtx({ path: `/live/team-a/t${n}`, identity: C.cognito(['team-a']) }));
      assert.equal(s.allowed, false, `admitted t${n} with the clock at ${String(broken)}`);
      const p = h.publish(eventsCtx({ path: `/live/team-a/t${n}`, identity: C.iam, operation: 'PUBLISH', events: C.events }));
      assert.equal(p.allowed, false, `published to t${n} with the clock at ${String(broken)}`);
    }
  }
});

test('epochs: the real clock admits the epoch a subscriber computes from it', () => {
  const h = load(files['events/live.js']);
  const n = Math.floor(Date.now() / 1000 / C.EPOCH_P);
  const r = h.subscribe(eventsCtx({ path: `/live/team-a/t${n}/chat`, identity: C.cognito(['team-a']) }));
  assert.equal(r.allowed, true, r.reason);
});

test('epochs: the handler\'s epoch segment rule agrees with every segment of the shared table', () => {
  assert.ok(table.segments.length >= 10);
  for (const c of table.segments) {
    assert.equal(live.parseEpochSegment(c.segment), c.epoch, JSON.stringify(c.segment));
    // Through onSubscribe: a segment that is no epoch is refused whatever the clock; an epoch is admitted when the
    // server is in it (where its first second is an exact number).
    const channel = `/live/team-a/${c.segment}/x`;
    const start = c.epoch === null ? C.EPOCH_NOW : c.epoch * C.EPOCH_P;
    if (!Number.isSafeInteger(start)) continue;
    live.setNow(start);
    const r = live.subscribe(eventsCtx({ path: channel, identity: C.cognito(['team-a']) }));
    assert.equal(r.allowed, c.epoch !== null, `${channel} at ${start}: ${r.reason}`);
  }
});

test('epochs: the handler\'s epoch of a moment agrees with every epoch of the shared table, for each period', () => {
  for (const c of table.epochs) {
    const ns = BY_PERIOD[c.period];
    assert.ok(ns, `epochs.toml has no namespace with epoch_seconds = ${c.period}`);
    const h = handlers[ns];
    h.setNow(c.unix);
    assert.equal(h.serverEpoch(), c.epoch, JSON.stringify(c));
    const identity = C.cognito(['team-a']);
    const channel = (seg) => `/${ns}/team-a/${seg}/x`;
    assert.equal(h.subscribe(eventsCtx({ path: channel(c.segment), identity })).allowed, true, `${ns}: ${c.segment} at ${c.unix}`);
    assert.equal(h.subscribe(eventsCtx({ path: channel(`t${c.epoch + 2}`), identity })).allowed, false, `${ns}: t${c.epoch + 2} at ${c.unix}`);
    if (c.epoch >= 2) assert.equal(h.subscribe(eventsCtx({ path: channel(`t${c.epoch - 2}`), identity })).allowed, false, `${ns}: t${c.epoch - 2} at ${c.unix}`);
  }
});

test('epochs: a namespace without epoch_seconds beside them keeps its channels (no epoch segment, no clock)', () => {
  const plain = handlers.plain;
  plain.setNow(() => {
    throw new Error('the namespace without epochs read the clock');
  });
  assert.equal(plain.parseEpochSegment, undefined, 'no epoch code in a namespace without epochs');
  const identity = C.cognito(['team-a']);
  assert.equal(plain.subscribe(eventsCtx({ path: '/plain/team-a/chat', identity })).allowed, true);
  assert.equal(plain.subscribe(eventsCtx({ path: '/plain/team-a/*', identity })).allowed, true);
  assert.equal(plain.subscribe(eventsCtx({ path: '/plain/team-b/chat', identity })).allowed, false);
  assert.equal(plain.publish(eventsCtx({ path: '/plain/team-a/chat', identity: C.iam, operation: 'PUBLISH', events: C.events })).allowed, true);
  assert.doesNotMatch(files['events/plain.js'], /EPOCH|epoch|util\.time/);
});

test('epochs: every rendered epoch handler passes the APPSYNC_JS lint and allow-list, within the 32 KB code limit', async () => {
  for (const name of Object.keys(files).filter((f) => f.startsWith('events/'))) {
    assert.deepEqual(await lintHandler(files[name]), [], `${name} uses something APPSYNC_JS lacks`);
    assert.deepEqual(checkAppsyncJs(files[name]), [], `${name} uses something AWS does not list`);
    assert.ok(files[name].length <= 32768, `${name} is over the 32 KB namespace code limit`);
  }
  assert.match(files['events/live.js'], /util\.time\.nowEpochSeconds\(\)/);
});
