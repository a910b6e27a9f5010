// iotCustomAuthUrl: the WebSocket URL for IoT's custom authorizer (iot.auth = "custom-authorizer").
import test from 'node:test';
import assert from 'node:assert/strict';
import { iotCustomAuthUrl, IOT_TOKEN_KEY_NAME, GroupcastError } from '../index.js';

const JWT = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1In0.c2ln-_';
const base = { endpoint: 'abc123-ats.iot.us-east-1.amazonaws.com', authorizerName: 'acme-live-iot-authorizer', token: JWT };

function refused(options, field, rule) {
  assert.throws(() => iotCustomAuthUrl(options), (e) => {
    assert.ok(e instanceof GroupcastError, `not a GroupcastError: ${e}`);
    assert.equal(e.field, field);
    assert.equal(e.rule, rule);
    return true;
  });
}

test('the url names the authorizer and carries the token under the authorizer token key', () => {
  const url = new URL(iotCustomAuthUrl(base));
  assert.equal(url.protocol, 'wss:');
  assert.equal(url.host, base.endpoint);
  assert.equal(url.pathname, '/mqtt');
  assert.deepEqual([...url.searchParams.keys()], ['x-amz-customauthorizer-name', 'groupcast-token']);
  assert.equal(url.searchParams.get('x-amz-customauthorizer-name'), 'acme-live-iot-authorizer');
  assert.equal(url.searchParams.get(IOT_TOKEN_KEY_NAME), JWT);
  assert.equal(IOT_TOKEN_KEY_NAME, 'groupcast-token');
});

test('a wss scheme, a trailing /mqtt, a Bearer prefix and another key name are accepted', () => {
  const url = new URL(iotCustomAuthUrl({
    ...base, endpoint: `wss://${base.endpoint}/mqtt`, token: `Bearer ${JWT}`, tokenKeyName: 'my-token',
  }));
  assert.equal(url.host, base.endpoint);
  assert.equal(url.searchParams.get('my-token'), JWT);
  assert.equal(url.searchParams.get('groupcast-token'), null);
});

test('values that would change the query are encoded, never spliced in', () => {
  const url = iotCustomAuthUrl({ ...base, authorizerName: 'a=b,c@d' });
  assert.ok(url.includes('x-amz-customauthorizer-name=a%3Db%2Cc%40d&'), url);
  assert.equal(new URL(url).searchParams.get('x-amz-customauthorizer-name'), 'a=b,c@d');
});

test('a bad endpoint, authorizer name, key name or token is refused naming the field', () => {
  for (const endpoint of [undefined, '', 'https://x.example/mqtt', 'host/path', 'a b', 'host?x=1', 'host#f']) {
    refused({ ...base, endpoint }, 'endpoint', 'endpoint');
  }
  for (const authorizerName of [undefined, '', 'a&b', 'a b', 'x'.repeat(129), 'é']) {
    refused({ ...base, authorizerName }, 'authorizerName', 'authorizer-name');
  }
  for (const tokenKeyName of ['', 'Token', 'a_b', 'a&b', 'x-amz-customauthorizer-name ']) {
    refused({ ...base, tokenKeyName }, 'tokenKeyName', 'token-key-name');
  }
  for (const token of [undefined, '', 'Bearer ', 'abc', 'a.b', 'a.b.c.d', 'a b.c.d', 42]) {
    refused({ ...base, token }, 'token', 'token');
  }
  refused(undefined, 'endpoint', 'endpoint');
});
