'use strict';
// Property: for random users, subscriptions and messages, a message is delivered if and only if the
// subscriber is authorized for it (and asked for it). Seeded and bounded so a failure replays exactly;
// fast-check shrinks a counterexample to the smallest user/subscription/message that leaks.
const test = require('node:test');
const assert = require('node:assert/strict');
const fc = require('fast-check');
const { render } = require('./lib/render');
const vtl = require('./lib/vtl');
const { matches, limitViolations } = require('./lib/filters');
const { load, eventsCtx } = require('./lib/handler');
const { allows } = require('./lib/policy');
const { authorized, intended } = require('./lib/oracle');

const SEED = 20261122;
const RUNS = 300;
const files = render('harness.toml');
const live = load(files['events/live.js']);
const seg = live.groupSegment;
const COGNITO_ISS = 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123';

// Names that collide in naive implementations: case, look-alikes, encodings, separators, wildcards.
const POOL = ['admins', 'Admins', 'ADMINS', '\u0430dmins', 'ＡＤＭＩＮ', 'team-a', 'Team_A', 'team_a', 'team-a ', '*', '#', '+', 'a/b', 'x--a', 'a--b', 'x---2a', 'quo"te', 'back\\slash', '$aws', 'é', 'e\u0301', 'g1', 'g2', 'g3'];
const group = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...POOL) },
  { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 8, unit: fc.constantFrom('a', 'A', '-', '_', 'x', '2', 'é', '*', '/', '\u0430') }) },
);
const groups = (max) => fc.uniqueArray(group, { maxLength: max });
const message = fc.record({ topic: fc.constantFrom('chat/1', 'chat', 'a', '*x', 'other/1'), data: fc.constant('{}'), groups: groups(4), uuid: fc.constant('u') });
const subscription = (userGroups) =>
  fc.record({
    prefix: fc.option(fc.constantFrom('', 'chat/', 'a', '*'), { nil: undefined }),
    onlyGroups: fc.option(
      fc.oneof(fc.subarray(userGroups), fc.uniqueArray(fc.oneof(fc.constantFrom(...(userGroups.length ? userGroups : ['g1'])), group), { maxLength: 4 })),
      { nil: undefined },
    ),
  });
const scenario = groups(12).chain((userGroups) => fc.record({ userGroups: fc.constant(userGroups), args: subscription(userGroups), messages: fc.array(message, { minLength: 1, maxLength: 6 }) }));

const cognito = (g) => ({ mode: vtl.MODES.COGNITO, claims: { iss: 'https://cognito-idp.us-east-1.amazonaws.com/p', sub: 's', 'cognito:username': 'u', 'cognito:groups': g } });

test('property (GraphQL): delivered iff the subscriber is in a message group they asked for', () => {
  fc.assert(
    fc.property(scenario, ({ userGroups, args, messages }) => {
      const r = vtl.subscribe(files, cognito(userGroups), args);
      const wanted = args.onlyGroups === undefined ? userGroups : args.onlyGroups;
      const mustReject = userGroups.length === 0 || wanted.length === 0 || wanted.some((g) => !userGroups.includes(g));
      assert.equal(r.rejected, mustReject, r.rejected ? `refused: ${r.message}` : `admitted ${JSON.stringify(r.filter)}`);
      if (r.rejected) return;
      assert.deepEqual(limitViolations(r.filter), []);
      for (const m of messages) {
        const got = matches(r.filter, m);
        if (got) assert.ok(authorized(userGroups, m), `LEAK: ${JSON.stringify(m.groups)} reached ${JSON.stringify(userGroups)}`);
        assert.equal(got, intended(userGroups, args, m), JSON.stringify(m));
      }
    }),
    { seed: SEED, numRuns: RUNS },
  );
});

// Events: a message to N groups is N publishes, one per group channel /live/{segment}/{topic}.
const channelFor = (g, topic) => `/live/${seg(g)}/${topic}`;
const receives = (subPath, channel) => (subPath.endsWith('/*') ? channel.startsWith(subPath.slice(0, -1)) : channel === subPath);

test('property (Events): a subscription admitted by onSubscribe receives only its groups\' messages', () => {
  const path = fc.oneof(
    group.map((g) => `/live/${seg(g) ?? 'none'}/*`),
    group.map((g) => `/live/${seg(g) ?? 'none'}/chat`),
    fc.constantFrom('/live/*', '/live', '/live/*/chat', '/live/a*', '/jobs/team-a/*'),
  );
  fc.assert(
    fc.property(groups(8), path, fc.array(message, { minLength: 1, maxLength: 6 }), fc.constantFrom('cognito', 'lambda'), (userGroups, subPath, messages, mode) => {
      const identity = mode === 'cognito' ? { sub: 's', issuer: COGNITO_ISS, groups: userGroups, claims: {} } : { handlerContext: { sub: 's', groups: JSON.stringify(userGroups) } };
      const r = live.subscribe(eventsCtx({ path: subPath, identity }));
      const own = userGroups.map(seg).filter((s) => s !== null);
      const segment = subPath.split('/')[2];
      assert.equal(r.allowed, subPath.startsWith('/live/') && own.includes(segment), `${subPath} for ${JSON.stringify(userGroups)}: ${r.reason}`);
      if (!r.allowed) return;
      for (const m of messages) {
        const channels = m.groups.filter((g) => seg(g) !== null).map((g) => channelFor(g, m.topic.replace(/[^A-Za-z0-9]/g, 'x')));
        const got = channels.some((c) => receives(subPath, c));
        if (got) assert.ok(authorized(userGroups, m), `LEAK: ${JSON.stringify(m.groups)} reached ${JSON.stringify(userGroups)} on ${subPath}`);
      }
    }),
    { seed: SEED, numRuns: RUNS * 3 },
  );
});

// Events with epochs (epochs.toml, `live`, 300 s): at a random server time, a subscription is admitted iff its group
// segment is the caller's, its third segment is the canonical t{N} of an epoch within one of the server's, and a `*`
// comes only last and after the epoch; and it receives only its groups' messages, published to the epoch of a
// publisher clock the handler admits.
const epochs = load(render('epochs.toml')['events/live.js']);
const EP = 300;
test('property (Events, epochs): admitted iff own group and an admitted epoch; receives only its groups\' messages', () => {
  const epochSeg = fc.oneof(
    { weight: 4, arbitrary: fc.integer({ min: -3, max: 3 }).map((d) => ({ d })) },
    { weight: 1, arbitrary: fc.constantFrom('*', 't*', 'T', 't', 'x', 't00', 'chat', '').map((raw) => ({ raw })) },
    { weight: 1, arbitrary: fc.integer({ min: -1, max: 1 }).map((d) => ({ d, pad: true })) },
  );
  const tail = fc.constantFrom([], ['*'], ['chat'], ['chat', '*'], ['a', 'b'], ['a', 'b', 'c']);
  fc.assert(
    fc.property(groups(6), group, epochSeg, tail, fc.integer({ min: 0, max: 4e9 }), fc.array(message, { minLength: 1, maxLength: 4 }), fc.integer({ min: -EP + 1, max: EP - 1 }), (userGroups, target, e, rest, now, messages, skew) => {
      const n = Math.floor(now / EP);
      const epochPart = e.raw !== undefined ? e.raw : `t${e.pad ? '0' : ''}${n + e.d}`;
      const subPath = ['', 'live', seg(target) ?? 'none', epochPart, ...rest].join('/');
      epochs.setNow(now);
      const identity = { sub: 's', issuer: COGNITO_ISS, groups: userGroups, claims: {} };
      const r = epochs.subscribe(eventsCtx({ path: subPath, identity }));
      const own = userGroups.map(seg).filter((x) => x !== null);
      const canonical = e.raw === undefined && !e.pad && n + e.d >= 0 && Math.abs(e.d) <= 1;
      // At most 5 segments: the topic (a final `*` included) has at most 2.
      const shapeOk = rest.length <= 2;
      const expected = own.includes(seg(target)) && canonical && shapeOk;
      assert.equal(r.allowed, expected, `${subPath} at ${now} for ${JSON.stringify(userGroups)}: ${r.reason}`);
      if (!r.allowed) return;
      // A publisher whose clock is off by less than an epoch publishes to the epoch of its clock, if the handler admits it.
      const pubEpoch = Math.floor(Math.max(0, now + skew) / EP);
      for (const m of messages) {
        for (const g of m.groups.filter((x) => seg(x) !== null)) {
          const channel = `/live/${seg(g)}/t${pubEpoch}/${m.topic.replace(/[^A-Za-z0-9]/g, 'x')}`;
          const pub = epochs.publish(eventsCtx({ path: channel, identity: { accountId: '123456789012', userArn: 'arn:aws:sts::123456789012:assumed-role/harness-publisher/p', cognitoIdentityPoolId: null }, operation: 'PUBLISH', events: [{ id: '1', payload: {} }] }));
          assert.equal(pub.allowed, true, `${channel} at ${now}: ${pub.reason}`);
          if (receives(subPath, channel)) assert.ok(authorized(userGroups, m), `LEAK: ${JSON.stringify(m.groups)} reached ${JSON.stringify(userGroups)} on ${subPath}`);
        }
      }
    }),
    { seed: SEED, numRuns: RUNS * 3 },
  );
});

// IoT: a subscriber holds the policies of their configured groups; a message to group g goes to {prefix}/{segment}/{topic}.
const CONFIGURED = ['admins', 'team-a', 'Team_B', '*', '#', '+', 'a/b', 'a+b', 'quo"te', 'back\\slash', '$aws', '\u0430dmins', 'ＡＤＭＩＮ', 'x--a', 'a--b', '${iot:ClientId}', '?'];
const policyOf = new Map(Object.entries(files).filter(([f]) => f.startsWith('iot/')).map(([, t]) => {
  const doc = JSON.parse(t);
  const level = doc.Statement.find((s) => s.Action === 'iot:Receive').Resource.split('topic/groupcast/')[1].slice(0, -2);
  return [level, doc];
}));

test('property (IoT): a subscriber receives a topic iff one of their groups owns it', () => {
  const ARN = 'arn:aws:iot:us-east-1:123456789012:';
  const vars = { 'cognito-identity.amazonaws.com:sub': 'us-east-1:me' };
  fc.assert(
    fc.property(fc.subarray(CONFIGURED), fc.constantFrom(...CONFIGURED), fc.constantFrom('chat', 'a/b', '#', '+'), (mine, target, topic) => {
      const docs = mine.map((g) => policyOf.get(seg(g)));
      assert.ok(docs.every(Boolean), 'every configured group has a policy');
      const receive = allows(docs, 'iot:Receive', `${ARN}topic/groupcast/${seg(target)}/${topic}`, vars);
      const subscribe = allows(docs, 'iot:Subscribe', `${ARN}topicfilter/groupcast/${seg(target)}/${topic}`, vars);
      assert.equal(receive, mine.includes(target), `receive ${target} with ${JSON.stringify(mine)}`);
      assert.equal(subscribe, mine.includes(target), `subscribe ${target} with ${JSON.stringify(mine)}`);
      assert.equal(allows(docs, 'iot:Publish', `${ARN}topic/groupcast/${seg(target)}/${topic}`, vars), false, 'subscribers never publish');
    }),
    { seed: SEED, numRuns: RUNS },
  );
});
