// Summarises bench/dev/run.sh's startup.jsonl and rounds.jsonl as the Markdown of BENCHMARKS.md
// ("The local stack"): medians with the min–max over the rounds, and ratios of medians.
import fs from 'node:fs';

const [startupFile, roundsFile] = process.argv.slice(2);
const lines = (f) => fs.readFileSync(f, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2; };
const fmt = (x) => Math.round(x).toLocaleString('en-US');
const ms = (x) => (Number.isFinite(x) ? x.toFixed(1) : '–');
const range = (xs, f) => `${f(Math.min(...xs))}–${f(Math.max(...xs))}`;

const starts = lines(startupFile);
const warm = starts.filter((s) => !s.cold);
const cold = starts.find((s) => s.cold);
console.log('Start-up to ready (spawn to the `groupcast dev ready` line):\n');
console.log('| start | median ms | range | self-reported ms (median) | runs |');
console.log('|---|---:|---|---:|---:|');
if (cold) console.log(`| cold (makes the CA, keys) | ${cold.spawn_to_ready_ms} | | ${cold.self_reported_ms} | 1 |`);
if (warm.length) {
  const w = warm.map((s) => s.spawn_to_ready_ms);
  console.log(`| warm (state dir kept) | **${median(w)}** | ${range(w, String)} | ${median(warm.map((s) => s.self_reported_ms))} | ${warm.length} |`);
}

const rows = lines(roundsFile);
const names = {
  'stack-events': '`provisioner dev` Events',
  'emulator-events': 'Node fixture (events-emulator.mjs) Events',
  'stack-graphql': '`provisioner dev` GraphQL',
};
const stats = {};
console.log(`\n${rows[0]?.subscribers ?? '?'} subscriber connections; medians over the rounds, min–max beside.\n`);
console.log('| target | phase | deliveries/s | range | p50 ms | range | p99 ms | range | delivered / expected | publish failures | rounds |');
console.log('|---|---|---:|---|---:|---|---:|---|---:|---:|---:|');
for (const target of Object.keys(names)) {
  for (const phase of ['paced', 'flat']) {
    const rs = rows.filter((r) => r.target === target && r.phase === phase);
    if (!rs.length) continue;
    const d = rs.map((r) => r.deliveries_per_s), p50 = rs.map((r) => r.p50_ms), p99 = rs.map((r) => r.p99_ms);
    const got = rs.reduce((a, r) => a + r.received, 0), want = rs.reduce((a, r) => a + r.expected, 0);
    const failed = rs.reduce((a, r) => a + r.publish_failed, 0);
    stats[`${target}/${phase}`] = { d: median(d), p50: median(p50), p99: median(p99) };
    console.log(`| ${names[target]} | ${phase} | **${fmt(median(d))}** | ${range(d, fmt)} | ${ms(median(p50))} | ${range(p50, ms)} | **${ms(median(p99))}** | ${range(p99, ms)} | ${fmt(got)} / ${fmt(want)} | ${failed} | ${rs.length} |`);
  }
}
const s = stats['stack-events/flat'], e = stats['emulator-events/flat'];
if (s && e) {
  console.log(`\nEvents flat out, stack / Node fixture (ratio of medians): **${(s.d / e.d).toFixed(2)}×** the deliveries/s, p99 ${(s.p99 / e.p99).toFixed(2)}×.`);
}
const sp = stats['stack-events/paced'], ep = stats['emulator-events/paced'];
if (sp && ep) {
  console.log(`Events paced, stack / Node fixture: p50 ${(sp.p50 / ep.p50).toFixed(2)}×, p99 ${(sp.p99 / ep.p99).toFixed(2)}×.`);
}
