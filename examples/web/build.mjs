// Bundles the page (src/app.js) for the browser with esbuild: aws-amplify, mqtt and the channel
// helper (clients/js) in one file, nothing left to fetch at run time.
// `node examples/web/build.mjs [OUT]` writes it (default examples/web/dist/app.js); serve.mjs bundles in memory.
import { writeFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(HERE, '..', '..');
// The page's npm dependencies are pinned in tests/package.json (the browser test builds the page):
// `npm ci --prefix tests` installs them.
const NODE_MODULES = path.join(REPO, 'tests', 'node_modules');
const requireDep = createRequire(path.join(NODE_MODULES, 'noop.js'));

/// The page's bundle: app.js with aws-amplify, mqtt and the channel helper, for the browser.
export async function bundle() {
  const esbuild = requireDep('esbuild');
  const out = await esbuild.build({
    entryPoints: [path.join(HERE, 'src', 'app.js')],
    bundle: true,
    write: false,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    nodePaths: [NODE_MODULES],
    alias: { '@groupcast/channels': path.join(REPO, 'clients', 'js', 'index.js') },
    define: { 'process.env.NODE_ENV': '"production"', global: 'globalThis' },
    logLevel: 'warning',
  });
  return out.outputFiles[0].text;
}


if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const out = path.resolve(process.argv[2] || path.join(HERE, 'dist', 'app.js'));
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, await bundle());
  console.log(`wrote ${out}`);
}
