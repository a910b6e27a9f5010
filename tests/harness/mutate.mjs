// Mutation test for the isolation templates: removes one check at a time from a copy of templates/ and vtl/,
// renders the copy with the provisioner (--templates) and runs the harness against it. Every mutant must make
// the harness fail; a mutant that passes is a check no test defends, and this script exits 1.
//
// Checks are found by their fences (`// check:NAME` ... `// /check:NAME` in JavaScript, `## check:NAME` ...
// `## /check:NAME` in VTL); the JSON policy templates have no comments, so their mutations are listed below.
//
//   node tests/harness/mutate.mjs                 # every mutation
//   node tests/harness/mutate.mjs --only a,b      # some of them (names as printed)
//   node tests/harness/mutate.mjs --list          # names only
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const here = path.dirname(fileURLToPath(import.meta.url));
const { REPO, provisionerBinary } = require('./lib/render.js');

// Which harness files judge which template.
const JUDGES = {
  'templates/events/handler.js.tera': ['events.test.js', 'events-epoch.test.js'],
  'vtl/Subscription.subscribe.response.vtl.tera': ['graphql.test.js'],
  'vtl/Mutation.publish.request.vtl.tera': ['graphql.test.js'],
  'vtl/_publisher-principals.vtl.tera': ['graphql.test.js'],
  'vtl/Mutation.revoke.request.vtl.tera': ['graphql.test.js'],
  'vtl/Mutation.revoke.response.vtl.tera': ['graphql.test.js'],
  'templates/iot/group-policy.json.tera': ['iot.test.js'],
  'templates/iam/publisher-policy.json.tera': ['iot.test.js'],
  'templates/iam/identity-pool-iot-policy.json.tera': ['iam.test.js'],
  'templates/iam/publisher-role-policy.json.tera': ['iam.test.js'],
  'templates/iam/iot-grant-role-policy.json.tera': ['iam.test.js'],
  'templates/iam/authorizer-role-policy.json.tera': ['iam.test.js'],
  'templates/iam/_lambda-logs.tera': ['iam.test.js'],
  'templates/iam/appsync-logs-role-policy.json.tera': ['iam.test.js'],
  'templates/iam/lambda-trust.json.tera': ['iam.test.js'],
  'templates/iam/deployer-policy.json.tera': ['iam.test.js'],
};

// Mutations of templates without comment syntax: [name, file, text to find (exactly once), replacement].
const EXPLICIT = [
  ['iot:connect-as-self', 'templates/iot/group-policy.json.tera', '"client/${cognito-identity.amazonaws.com:sub}"', '"client/*"'],
  ['iot:connect-suffix-dash', 'templates/iot/group-policy.json.tera', '"client/${cognito-identity.amazonaws.com:sub}-*"', '"client/${cognito-identity.amazonaws.com:sub}*"'],
  ['iot:partition', 'templates/iot/group-policy.json.tera', '"arn:" ~ partition ~ ":iot:"', '"arn:aws:iot:"'],
  ['iot:subscribe-own-level', 'templates/iot/group-policy.json.tera', '"topicfilter/" ~ iot.topic_prefix ~ "/" ~ iot.group_level ~ "/*"', '"topicfilter/" ~ iot.topic_prefix ~ "/*"'],
  ['iot:receive-own-level', 'templates/iot/group-policy.json.tera', '"topic/" ~ iot.topic_prefix ~ "/" ~ iot.group_level ~ "/*"', '"topic/" ~ iot.topic_prefix ~ "/*"'],
  ['iot:level-separator', 'templates/iot/group-policy.json.tera', '~ iot.group_level ~ "/*" %}\n{%- set receive_arn', '~ iot.group_level ~ "*" %}\n{%- set receive_arn'],
  ['iot:no-publish', 'templates/iot/group-policy.json.tera', '"Action": "iot:Receive"', '"Action": ["iot:Receive", "iot:Publish"]'],
  ['iam:graphql-publish-only', 'templates/iam/publisher-policy.json.tera', '"Action": "appsync:GraphQL"', '"Action": "appsync:*"'],
  ['iam:graphql-revoke-field-only', 'templates/iam/publisher-policy.json.tera', 'to="/types/Mutation/fields/revoke"', 'to="/types/Mutation/fields/*"'],
  ['iam:iot-publish-only', 'templates/iam/publisher-policy.json.tera', '"Action": "iot:Publish"', '"Action": "iot:*"'],
  ['iam:pool-connect-as-self', 'templates/iam/identity-pool-iot-policy.json.tera', 'arn ~ "client/${cognito-identity.amazonaws.com:sub}"', 'arn ~ "client/*"'],
  ['iam:pool-connect-suffix-separator', 'templates/iam/identity-pool-iot-policy.json.tera', 'own_client ~ "-*"', 'own_client ~ "*"'],
  ['iam:pool-subscribe-prefix', 'templates/iam/identity-pool-iot-policy.json.tera', '"topicfilter/" ~ iot.topic_prefix ~ "/*"', '"topicfilter/*"'],
  ['iam:pool-receive-prefix', 'templates/iam/identity-pool-iot-policy.json.tera', '"topic/" ~ iot.topic_prefix ~ "/*"', '"topic/*"'],
  ['iam:pool-no-publish', 'templates/iam/identity-pool-iot-policy.json.tera', '"Action": "iot:Receive"', '"Action": ["iot:Receive", "iot:Publish"]'],
  ['iam:publisher-connect-only-websocket', 'templates/iam/publisher-role-policy.json.tera', '{%- if connect %}\n', '{%- if true %}\n'],
  ['iam:publisher-connect-api-only', 'templates/iam/publisher-role-policy.json.tera', '"Resource": {{ connect | json }}', '"Resource": "*"'],
  ['iam:grant-project-policies', 'templates/iam/iot-grant-role-policy.json.tera', 'iot_arn ~ "policy/" ~ iam.iot_policy_glob', 'iot_arn ~ "policy/*"'],
  ['iam:grant-one-pool', 'templates/iam/iot-grant-role-policy.json.tera', ':identitypool/" ~ pool %}', ':identitypool/*" %}'],
  ['iam:authorizer-one-pool', 'templates/iam/authorizer-role-policy.json.tera', '"Resource": {{ pool | json }}', '"Resource": "*"'],
  ['iam:authorizer-read-groups-only', 'templates/iam/authorizer-role-policy.json.tera', '"Action": ["cognito-idp:AdminGetUser", "cognito-idp:AdminListGroupsForUser"]', '"Action": "cognito-idp:*"'],
  ['iam:logs-own-group', 'templates/iam/_lambda-logs.tera', ':log-group:/aws/lambda/" ~ iam.function_name %}', ':log-group:/aws/lambda/*" %}'],
  ['iam:appsync-logs-own-groups', 'templates/iam/appsync-logs-role-policy.json.tera', ':log-group:/aws/appsync/apis/" ~ id %}', ':log-group:*" %}'],
  ['iam:lambda-trust-own-account', 'templates/iam/lambda-trust.json.tera', '"Condition": { "StringEquals": { "aws:SourceAccount": {{ account_id | json }} } }', '"Condition": {}'],
  ['iam:deployer-scoped-resources', 'templates/iam/deployer-policy.json.tera', '"Resource": {{ s.resources | json }}', '"Resource": "*"'],
];

function fenced() {
  const out = [];
  for (const file of Object.keys(JUDGES)) {
    const text = fs.readFileSync(path.join(REPO, file), 'utf8');
    const re = /^[ \t]*(?:\/\/|##) check:([a-z-]+)[ \t]*\n[\s\S]*?^[ \t]*(?:\/\/|##) \/check:\1[ \t]*\n/gm;
    for (const m of text.matchAll(re)) {
      // `Mutation.publish.request.vtl.tera` -> `Mutation.publish`; a shared part `_name.vtl.tera` -> `_name`.
      const prefix = file.startsWith('vtl/') ? path.basename(file).replace(/\.vtl\.tera$/, '').split('.').slice(0, 2).join('.') : 'handler';
      out.push({ name: `${prefix}:${m[1]}`, file, apply: (t) => t.replace(m[0], '') });
    }
  }
  return out;
}

function explicit() {
  return EXPLICIT.map(([name, file, from, to]) => ({
    name,
    file,
    apply: (t) => {
      const n = t.split(from).length - 1;
      if (n !== 1) throw new Error(`mutation ${name}: ${JSON.stringify(from)} occurs ${n} times in ${file}; update EXPLICIT`);
      return t.replace(from, to);
    },
  }));
}

function copyTemplates(dest) {
  for (const sub of ['templates', 'vtl']) fs.cpSync(path.join(REPO, sub), path.join(dest, sub), { recursive: true });
}

function run(cmd, args, env) {
  // Under `node --test` this process carries NODE_TEST_CONTEXT, which would make the child report in the
  // runner's binary protocol instead of TAP.
  const { NODE_TEST_CONTEXT, ...parent } = process.env;
  return new Promise((resolve) => {
    execFile(cmd, args, { cwd: here, env: { ...parent, ...env }, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? err.code ?? 1 : 0, stdout: String(stdout), stderr: String(stderr) }),
    );
  });
}

async function judge(m, binary) {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'groupcast-mutant-'));
  try {
    copyTemplates(root);
    const target = path.join(root, m.file);
    const before = fs.readFileSync(target, 'utf8');
    const after = m.apply(before);
    if (after === before) throw new Error(`mutation ${m.name} changed nothing`);
    fs.writeFileSync(target, after);
    const r = await run(process.execPath, ['--test', '--test-reporter=tap', ...JUDGES[m.file].map((f) => path.join(here, f))], {
      GROUPCAST_TEMPLATES_ROOT: root,
      GROUPCAST_PROVISIONER: binary,
    });
    // Each failing test, with the first line of its assertion message ("LEAK: ...", "ADMITTED ...").
    const failed = [...r.stdout.matchAll(/^not ok \d+ - (.*)$\n(?:.*\n)*?\s+error: (?:\|-\n\s+)?(?:'(.*)'|(.*))$/gm)].map((x) => `${x[1]}: ${x[2] ?? x[3]}`);
    const renderFailed = /provisioner render .* failed/.test(r.stdout + r.stderr);
    return { name: m.name, caught: r.code !== 0 && failed.length > 0 && !renderFailed, renderFailed, failed };
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

export async function mutate({ only } = {}) {
  const all = [...fenced(), ...explicit()];
  const chosen = only ? all.filter((m) => only.includes(m.name)) : all;
  if (only) {
    const missing = only.filter((n) => !all.some((m) => m.name === n));
    if (missing.length) throw new Error(`unknown mutations: ${missing.join(', ')} (have: ${all.map((m) => m.name).join(', ')})`);
  }
  const binary = provisionerBinary();
  const results = [];
  const queue = [...chosen];
  const workers = Array.from({ length: Math.min(2, queue.length) }, async () => {
    while (queue.length) results.push(await judge(queue.shift(), binary));
  });
  await Promise.all(workers);
  const order = chosen.map((m) => m.name);
  return results.sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
}

export function report(results) {
  const lines = [];
  for (const r of results) {
    const verdict = r.renderFailed ? 'DID NOT RENDER' : r.caught ? `caught by ${r.failed.length} test(s)` : 'SURVIVED';
    lines.push(`${r.caught ? 'ok  ' : 'FAIL'} ${r.name}: ${verdict}`);
    for (const f of r.failed.slice(0, 3)) lines.push(`       - ${f}`);
    if (r.failed.length > 3) lines.push(`       - ... ${r.failed.length - 3} more`);
  }
  return lines.join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  if (args.includes('--list')) {
    for (const m of [...fenced(), ...explicit()]) console.log(`${m.name}\t${m.file}`);
  } else {
    const i = args.indexOf('--only');
    const only = i >= 0 ? args[i + 1].split(',') : undefined;
    const results = await mutate({ only });
    console.log(report(results));
    const survivors = results.filter((r) => !r.caught);
    console.log(`\n${results.length - survivors.length}/${results.length} mutants caught`);
    process.exit(survivors.length ? 1 : 0);
  }
}
