'use strict';
// The harness renders this tree's templates (`--templates`); deployments use the copies embedded in the
// provisioner binary. They must be the same documents, or the harness would be testing something else.
const test = require('node:test');
const assert = require('node:assert/strict');
const { render } = require('./lib/render');

for (const config of ['harness.toml', 'small.toml', 'epochs.toml']) {
  test(`render: the provisioner's embedded templates give the same documents as this tree (${config})`, () => {
    const tree = render(config);
    const embedded = render(config, false);
    assert.deepEqual(Object.keys(embedded).sort(), Object.keys(tree).sort());
    for (const [file, text] of Object.entries(tree)) assert.equal(embedded[file], text, `${file} differs: rebuild the provisioner`);
  });
}

test('render: the bundled example config renders documents the harness accepts', () => {
  const path = require('node:path');
  const { load, eventsCtx } = require('./lib/handler');
  const { REPO } = require('./lib/render');
  const files = render(path.join(REPO, 'examples', 'groupcast.toml'));
  const member = { sub: 's', username: 'u', issuer: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123', groups: ['team-a'], claims: {} };
  const publisher = { accountId: '123456789012', userArn: 'arn:aws:sts::123456789012:assumed-role/acme-live-publisher/fn', cognitoIdentityPoolId: null };
  const events = [{ id: '1', payload: {} }];
  // `live` has no epochs; `jobs` has 300 s epochs, so its channels carry t{N} of the server's clock.
  const now = 1795000000;
  const epoch = { live: '', jobs: `/t${Math.floor(now / 300)}` };
  for (const ns of ['live', 'jobs']) {
    const h = load(files[`events/${ns}.js`], { now });
    assert.equal(h.subscribe(eventsCtx({ path: `/${ns}/*`, identity: member })).allowed, false, `${ns}: /${ns}/* admitted`);
    const own = h.subscribe(eventsCtx({ path: `/${ns}/team-a${epoch[ns]}/*`, identity: member }));
    assert.equal(own.allowed, true, `${ns}: own group refused: ${own.reason}`);
    const pub = h.publish(eventsCtx({ path: `/${ns}/team-a${epoch[ns]}`, identity: publisher, operation: 'PUBLISH', events }));
    assert.equal(pub.allowed, true, `${ns}: the publisher role refused: ${pub.reason}`);
  }
  const jobs = load(files['events/jobs.js'], { now });
  assert.equal(jobs.subscribe(eventsCtx({ path: '/jobs/team-a/*', identity: member })).allowed, false, 'jobs: a channel without its epoch admitted');
  const iot = Object.keys(files).filter((f) => f.startsWith('iot/'));
  assert.equal(iot.length, 4);
  for (const f of [...iot, 'iam/publisher-policy.json']) JSON.parse(files[f]);
  assert.match(files['graphql/Subscription.subscribe.response.vtl'], /at most 50 groups per subscription/);
});
