'use strict';
// The harness renders this tree's templates (`--templates`); deployments use the copies embedded in the
// provisioner binary. They must be the same documents, or the harness would be testing something else.
const test = require('node:test');
const assert = require('node:assert/strict');
const { render } = require('./lib/render');

for (const config of ['harness.toml', 'small.toml']) {
  test(`render: the provisioner's embedded templates give the same documents as this tree (${config})`, () => {
    const tree = render(config);
    const embedded = render(config, false);
    assert.deepEqual(Object.keys(embedded).sort(), Object.keys(tree).sort());
    for (const [file, text] of Object.entries(tree)) assert.equal(embedded[file], text, `${file} differs: rebuild the provisioner`);
  });
}
