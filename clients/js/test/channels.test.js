// The rules around the segment: errors that say which rule, Events channels, IoT topics and client ids.
import test from 'node:test';
import assert from 'node:assert/strict';
import {
  groupSegment, decodeSegment, eventsChannel, iotTopic, iotClientId, GroupcastError,
} from '../index.js';
import { names } from './random.js';

function refused(fn, field, rule, message) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof GroupcastError, `not a GroupcastError: ${e}`);
    assert.ok(e instanceof Error);
    assert.equal(e.field, field);
    assert.equal(e.rule, rule);
    if (message instanceof RegExp) assert.match(e.message, message);
    else if (message !== undefined) assert.equal(e.message, message);
    return true;
  });
}

test('an empty group name is refused with the Rust error text', () => {
  refused(() => groupSegment(''), 'group', 'empty', 'group name is empty: a group needs at least one character');
});

test('a name whose encoding exceeds 50 characters is refused with the Rust error text and length', () => {
  refused(
    () => groupSegment('z'.repeat(51)),
    'group',
    'too-long',
    `group "${'z'.repeat(51)}" cannot be mapped to a channel segment: its encoded form is 54 characters and a segment holds at most 50; names of letters, digits and inner single hyphens map to themselves, other characters cost 3 per UTF-8 byte`,
  );
  // 16 two-byte characters: 3 + 16 * 6 = 99 characters.
  refused(() => groupSegment('é'.repeat(16)), 'group', 'too-long', /encoded form is 99 characters/);
  // Letters plus one escape: 3 + 46 + 3 = 52 does not fit, 3 + 44 + 3 = 50 does.
  refused(() => groupSegment(`${'a'.repeat(46)}_`), 'group', 'too-long', /encoded form is 52 characters/);
  assert.equal(groupSegment(`${'a'.repeat(44)}_`), `x--${'a'.repeat(44)}-5f`);
});

test('a string with an unpaired surrogate has no UTF-8 bytes and is refused, never substituted', () => {
  for (const g of ['\ud800', 'a\udc00', '\ud83d', 'x\ud83dy', '\udc00\ud800', `${'a'.repeat(10)}\udfff`]) {
    refused(() => groupSegment(g), 'group', 'lone-surrogate', /unpaired UTF-16 surrogate/);
  }
  // A paired surrogate is one character: four UTF-8 bytes.
  assert.equal(groupSegment('😀'), 'x---f0-9f-98-80');
});

test('a group that is not a string is refused, not coerced', () => {
  for (const g of [null, undefined, 7, ['admins'], { toString: () => 'admins' }]) {
    refused(() => groupSegment(g), 'group', 'not-a-string', /must be a string/);
  }
});

test('decodeSegment refuses every non-canonical or invalid segment, as Rust does', () => {
  for (const s of ['x--', 'x---2', 'x---zz', 'x--a-41', 'a--b', 'x---ff', '', '-a', 'x---2D', 'x---c3', null, 7]) {
    assert.equal(decodeSegment(s), null, JSON.stringify(s));
  }
});

test('on seeded random names, segments are valid, wildcard-free, decode back and are never shared', () => {
  const owner = new Map();
  let encoded = 0;
  for (const g of names(20261126, 5000)) {
    let s;
    try {
      s = groupSegment(g);
    } catch (e) {
      assert.ok(e instanceof GroupcastError && ['empty', 'too-long'].includes(e.rule), `${JSON.stringify(g)}: ${e}`);
      continue;
    }
    assert.match(s, /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,48}[A-Za-z0-9])?$/, JSON.stringify(g));
    assert.equal(decodeSegment(s), g, JSON.stringify(g));
    const prev = owner.get(s);
    assert.ok(prev === undefined || prev === g, `${JSON.stringify(prev)} and ${JSON.stringify(g)} share ${s}`);
    owner.set(s, g);
    if (s !== g) encoded += 1;
  }
  assert.ok(encoded > 1000 && owner.size - encoded > 300, `${encoded} encoded of ${owner.size}`);
});

test('eventsChannel joins namespace, segment and topic', () => {
  assert.equal(eventsChannel('live', 'Team_B', 'comments/post-42'), '/live/x--Team-5fB/comments/post-42');
  assert.equal(eventsChannel('live', 'team-a', 'jobs'), '/live/team-a/jobs');
  assert.equal(eventsChannel('live', 'team-a', 'a/b/c'), '/live/team-a/a/b/c');
});

test('eventsChannel lets a subscriber end the topic in a `*` level, within five channel segments', () => {
  assert.equal(eventsChannel('live', 'team-a', 'jobs/*'), '/live/team-a/jobs/*');
  assert.equal(eventsChannel('live', 'team-a', '*'), '/live/team-a/*');
  assert.equal(eventsChannel('live', 'team-a', 'a/b/*'), '/live/team-a/a/b/*');
  refused(() => eventsChannel('live', 'team-a', 'a/b/c/*'), 'topic', 'segments', /has 4 segments: 1 to 3 segments/);
  for (const t of ['*/jobs', 'jo*', 'jobs/**', 'jobs/*/x', '#', 'jobs/#']) {
    refused(() => eventsChannel('live', 'team-a', t), 'topic', t.split('/').length > 3 ? 'segments' : 'segment');
  }
});

test('eventsChannel refuses a bad namespace with the Rust error text', () => {
  refused(
    () => eventsChannel('live/x', 'team-a', 'jobs'),
    'events.namespace',
    'segment',
    'invalid events.namespace: "live/x" is not a namespace name: 1-50 characters of [A-Za-z0-9-], alphanumeric at both ends',
  );
  for (const ns of ['', '-live', 'live-', 'li_ve', 'x'.repeat(51), '*', null]) {
    refused(() => eventsChannel(ns, 'team-a', 'jobs'), 'events.namespace', 'segment');
  }
});

test('eventsChannel refuses a bad topic with the Rust error text, and a bad group with its rule', () => {
  refused(
    () => eventsChannel('live', 'team-a', ''),
    'topic',
    'empty',
    "invalid topic: must not be empty: 1 to 3 segments joined by '/', each 1-50 characters of [A-Za-z0-9-] starting and ending with a letter or digit",
  );
  refused(
    () => eventsChannel('live', 'team-a', 'a/b/c/d'),
    'topic',
    'segments',
    "invalid topic: \"a/b/c/d\" has 4 segments: 1 to 3 segments joined by '/', each 1-50 characters of [A-Za-z0-9-] starting and ending with a letter or digit",
  );
  refused(
    () => eventsChannel('live', 'team-a', 'a//b'),
    'topic',
    'segment',
    /^invalid topic: "a\/\/b" has the segment "": 1 to 3 segments/,
  );
  for (const t of ['/jobs', 'jobs/', 'jo_bs', '-jobs', 'x'.repeat(51), null]) {
    assert.throws(() => eventsChannel('live', 'team-a', t), GroupcastError, JSON.stringify(t));
  }
  refused(() => eventsChannel('live', '', 'jobs'), 'group', 'empty');
});

test('iotTopic joins prefix, segment and topic, and lets a subscriber end the topic in `#`', () => {
  assert.equal(iotTopic('gc', 'Team_B', 'comments/post-42'), 'gc/x--Team-5fB/comments/post-42');
  assert.equal(iotTopic('app/gc', 'team-a', 'jobs/#'), 'app/gc/team-a/jobs/#');
  assert.equal(iotTopic('gc', 'team-a', '#'), 'gc/team-a/#');
  for (const t of ['*', 'jobs/*', 'jobs/+', '+/x', '#/x', 'a/b/c/#']) {
    assert.throws(() => iotTopic('gc', 'team-a', t), GroupcastError, t);
  }
});

test('iotTopic refuses a prefix IoT or the policy would misread, with the Rust error text', () => {
  refused(
    () => iotTopic('$aws/things', 'team-a', 'jobs'),
    'iot.topic_prefix',
    'prefix',
    "invalid iot.topic_prefix: \"$aws/things\": an IoT topic prefix is one or more non-empty levels joined by '/', without '+', '#', '*', '?' or a leading '$'",
  );
  for (const p of ['', '/gc', 'gc/', 'a//b', 'g+c', 'g#c', 'g*c', 'g?c', 'g\0c', null]) {
    refused(() => iotTopic(p, 'team-a', 'jobs'), 'iot.topic_prefix', 'prefix');
  }
});

test('iotTopic keeps to IoT Core topic limits: 256 bytes and 7 slashes', () => {
  const prefix = 'p'.repeat(100);
  const long = `${'a'.repeat(50)}/${'b'.repeat(50)}/${'c'.repeat(50)}`;
  refused(() => iotTopic(prefix, 'team-a', long), 'topic', 'iot-bytes', /is 260 bytes; IoT Core allows at most 256/);
  assert.equal(iotTopic('p'.repeat(96), 'team-a', long).length, 256);
  refused(() => iotTopic('a/b/c/d/e', 'team-a', 'x/y/z'), 'topic', 'iot-slashes', /has 8 '\/'; IoT Core allows at most 7/);
  assert.equal(iotTopic('a/b/c/d', 'team-a', 'x/y/z'), 'a/b/c/d/team-a/x/y/z');
});

const ID = 'us-east-1:0f9a8b7c-1234-4d5e-8f90-abcdef012345';

test('iotClientId is the identity id, or the identity id plus `-` and a suffix, as the policy allows', () => {
  assert.equal(iotClientId(ID), ID);
  assert.equal(iotClientId(ID, 'tab-2'), `${ID}-tab-2`);
  const uuid = '6f1c2c1e-8f0c-4b7e-9c7a-0a1b2c3d4e5f';
  assert.equal(iotClientId(ID, uuid), `${ID}-${uuid}`);
  assert.equal(iotClientId(ID, 'x'.repeat(128 - ID.length - 1)).length, 128);
});

test('iotClientId refuses what is no Cognito identity id, with the Rust error text', () => {
  refused(
    () => iotClientId('team-a'),
    'identityId',
    'identity-id',
    'identityId "team-a": must be a Cognito identity id: <region>:<uuid>, at most 55 characters',
  );
  for (const id of ['', ':abc', 'us-east-1:', 'US-EAST-1:abc', 'us-east-1:abc:def', 'us-east-1:xyz', `us-east-1:${'a'.repeat(50)}`, 'us-east-1:*', null, undefined]) {
    refused(() => iotClientId(id, 'tab'), 'identityId', 'identity-id');
  }
});

test('iotClientId refuses a suffix that is empty, too long or holds characters outside [A-Za-z0-9_-]', () => {
  for (const s of ['', 'a b', 'a/b', 'a+b', 'a#b', '*', 'é', 'x'.repeat(128 - ID.length), 7]) {
    refused(() => iotClientId(ID, s), 'suffix', 'client-id-suffix', /must be 1-81 characters of \[A-Za-z0-9_-\]/);
  }
});
