'use strict';
// The Events namespace handler against the adversarial corpus: onSubscribe must admit a caller only to
// /{namespace}/{segment of one of their groups}/..., and onPublish only IAM callers on group channels. The
// handler runs as rendered, in a bare V8 context with APPSYNC_JS's `util`, and passes the APPSYNC_JS lint.
const test = require('node:test');
const assert = require('node:assert/strict');
const { render } = require('./lib/render');
const { load, eventsCtx } = require('./lib/handler');
const { lintHandler } = require('./lib/lint');
const { checkAppsyncJs } = require('./lib/appsync-js');

const files = render('harness.toml');
const live = load(files['events/live.js']);
const open = load(files['events/open.js']);
const modes = load(render('modes.toml')['events/live.js']);

const {
  cognito, lambda, lambdaGroups, iamCaller, iam, corpus, events, publishCorpus, modesCorpus, badLambdaGroupTexts,
} = require('./lib/events-corpus');

for (const [attack, identity, path, expected] of corpus) {
  test(`events onSubscribe: ${attack}`, () => {
    const r = live.subscribe(eventsCtx({ path, identity }));
    if (expected === true) {
      assert.equal(r.allowed, true, `refused: ${r.reason}`);
    } else {
      assert.equal(r.allowed, false, `ADMITTED ${JSON.stringify(path)}`);
      assert.match(r.reason, expected, `refused for another reason: ${r.reason}`);
    }
  });
}

for (const [attack, identity, path, expected] of publishCorpus) {
  test(`events onPublish: ${attack}`, () => {
    const r = live.publish(eventsCtx({ path, identity, operation: 'PUBLISH', events }));
    if (expected === true) {
      assert.equal(r.allowed, true, `refused: ${r.reason}`);
      assert.deepEqual(r.value, events, 'onPublish must forward the events unchanged');
    } else {
      assert.equal(r.allowed, false, `PUBLISHED to ${JSON.stringify(path)}`);
      assert.match(r.reason, expected, `refused for another reason: ${r.reason}`);
    }
  });
}

test('events: a namespace with group_check = false has no onSubscribe, only the publish guard', () => {
  assert.equal(open.hasOnSubscribe, false);
  assert.equal(live.hasOnSubscribe, true);
  assert.equal(open.publish(eventsCtx({ path: '/open/team-a', identity: cognito(['team-a']), operation: 'PUBLISH', events })).allowed, false);
});

test('events: every rendered handler passes the APPSYNC_JS lint (@aws-appsync/eslint-plugin recommended)', async () => {
  for (const name of Object.keys(files).filter((f) => f.startsWith('events/'))) {
    assert.deepEqual(await lintHandler(files[name]), [], `${name} uses something APPSYNC_JS lacks`);
    assert.ok(files[name].length <= 32768, `${name} is over the 32 KB namespace code limit`);
  }
});

test('events: every rendered handler uses only what AWS lists as supported in APPSYNC_JS', () => {
  for (const name of Object.keys(files).filter((f) => f.startsWith('events/'))) {
    assert.deepEqual(checkAppsyncJs(files[name]), [], `${name} uses something AWS does not list (tests/harness/appsync-js-supported.json)`);
  }
});

for (const [attack, identity, expected] of modesCorpus) {
  test(`events onSubscribe, namespace subscribing with Cognito only: ${attack}`, () => {
    const r = modes.subscribe(eventsCtx({ path: '/live/team-a', identity }));
    if (expected === true) assert.equal(r.allowed, true, `refused: ${r.reason}`);
    else {
      assert.equal(r.allowed, false, 'ADMITTED');
      assert.match(r.reason, expected, `refused for another reason: ${r.reason}`);
    }
  });
}

test('events: the publisher of another project is refused (the allow-list is per project)', () => {
  const r = modes.publish(eventsCtx({ path: '/live/team-a', identity: iam, operation: 'PUBLISH', events }));
  assert.equal(r.allowed, false);
  assert.match(r.reason, /is not one/);
  const own = modes.publish(eventsCtx({ path: '/live/team-a', identity: iamCaller('arn:aws:sts::210987654321:assumed-role/modes-publisher/x'), operation: 'PUBLISH', events }));
  assert.equal(own.allowed, true, own.reason);
});

test('events: bad Lambda groups text is refused whether JSON.parse returns "" (AWS) or throws (ECMAScript)', () => {
  const throwing = load(files['events/live.js'], { jsonParse: 'throws' });
  for (const text of badLambdaGroupTexts) {
    for (const h of [live, throwing]) {
      const r = h.subscribe(eventsCtx({ path: '/live/team-a', identity: lambda({ groups: text }) }));
      assert.equal(r.allowed, false, `admitted with handlerContext.groups ${JSON.stringify(text)}`);
    }
  }
  assert.equal(throwing.subscribe(eventsCtx({ path: '/live/team-a', identity: lambdaGroups(['team-a']) })).allowed, true);
});
