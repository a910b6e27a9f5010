// The page of examples/web bundles into one self-contained file: esbuild resolves aws-amplify,
// mqtt and the channel helper from tests/node_modules, and the bundle imports nothing at run time
// (no CDN, no module fetched by URL).
import test from 'node:test';
import assert from 'node:assert/strict';
import { bundle } from '../../examples/web/build.mjs';

test('the web page bundles into one file that imports nothing at run time', async () => {
  const js = await bundle();
  assert.ok(js.length > 100000, `the bundle holds the clients (${js.length} bytes)`);
  assert.doesNotMatch(js, /^\s*import\s[^;]*?from\s*["']/m, 'no static import is left for the browser to fetch');
  assert.doesNotMatch(js, /\bimport\(\s*["'`]https?:/, 'no dynamic import of a URL');
  assert.match(js, /x--/, "the channel helper's group rule is in the bundle");
});
