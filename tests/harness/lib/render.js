'use strict';
// Renders groupcast's templates with the provisioner's own code (`provisioner render`), never a copy of it.
//
// The binary is $GROUPCAST_PROVISIONER, else target/debug/provisioner after `cargo build -p groupcast-provisioner`.
// Templates come from $GROUPCAST_TEMPLATES_ROOT (a directory holding templates/ and vtl/; the mutation test points
// it at mutated copies), else from this repository. A failure to build or render fails the test with its output.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const REPO = path.resolve(__dirname, '..', '..', '..');
const CONFIGS = path.join(__dirname, '..', 'configs');

let cachedBinary = null;

function provisionerBinary() {
  if (cachedBinary) return cachedBinary;
  if (process.env.GROUPCAST_PROVISIONER) {
    cachedBinary = process.env.GROUPCAST_PROVISIONER;
    if (!fs.existsSync(cachedBinary)) {
      throw new Error(`GROUPCAST_PROVISIONER=${cachedBinary}: no such file`);
    }
    return cachedBinary;
  }
  try {
    execFileSync('cargo', ['build', '-q', '-p', 'groupcast-provisioner'], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    throw new Error(`cargo build -p groupcast-provisioner failed; the harness renders with the provisioner:\n${e.stderr || e.message}`);
  }
  const targetDir = process.env.CARGO_TARGET_DIR ? path.resolve(REPO, process.env.CARGO_TARGET_DIR) : path.join(REPO, 'target');
  cachedBinary = path.join(targetDir, 'debug', 'provisioner');
  if (!fs.existsSync(cachedBinary)) {
    throw new Error(`${cachedBinary} is missing after cargo build; set GROUPCAST_PROVISIONER`);
  }
  return cachedBinary;
}

/// Runs `provisioner render --config CONFIG --out DIR [--templates ROOT]`; returns {ok, dir, stderr}.
function tryRender(configPath, templatesRoot) {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'groupcast-render-'));
  // templatesRoot === false: the templates embedded in the binary at build time.
  const root = templatesRoot === false ? null : templatesRoot || process.env.GROUPCAST_TEMPLATES_ROOT || REPO;
  const args = ['render', '--config', configPath, '--out', out, ...(root ? ['--templates', root] : [])];
  try {
    execFileSync(provisionerBinary(), args, {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return { ok: true, dir: out, stderr: '' };
  } catch (e) {
    fs.rmSync(out, { recursive: true, force: true });
    return { ok: false, dir: null, stderr: String(e.stderr || e.message) };
  }
}

/// Renders a config (a file name under tests/harness/configs, or a path) and reads every output file.
function render(config, templatesRoot) {
  const configPath = path.isAbsolute(config) ? config : path.join(CONFIGS, config);
  const r = tryRender(configPath, templatesRoot);
  if (!r.ok) {
    throw new Error(`provisioner render --config ${configPath} failed:\n${r.stderr}`);
  }
  return readTree(r.dir);
}

/// Renders a config given as TOML text (for cases that must fail to render).
function renderText(toml, templatesRoot) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'groupcast-config-'));
  const file = path.join(dir, 'groupcast.toml');
  fs.writeFileSync(file, toml);
  const r = tryRender(file, templatesRoot);
  fs.rmSync(dir, { recursive: true, force: true });
  return r.ok ? { ok: true, files: readTree(r.dir) } : r;
}

function readTree(dir) {
  const files = {};
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else files[path.relative(dir, p).split(path.sep).join('/')] = fs.readFileSync(p, 'utf8');
    }
  };
  walk(dir);
  fs.rmSync(dir, { recursive: true, force: true });
  return files;
}

function configText(name) {
  return fs.readFileSync(path.join(CONFIGS, name), 'utf8');
}

module.exports = { render, renderText, configText, provisionerBinary, REPO };
