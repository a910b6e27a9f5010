// The epoch rule (issue 14) against the table groupcast::epoch and the generated Events handler are
// tested with (tests/fixtures/epoch-segments.json), and keepSubscribed driven by a fake clock across
// epoch boundaries.
import test from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import {
  epochAt, epochSegment, parseEpochSegment, epochWindow, epochNextChange, eventsChannel, keepSubscribed,
  GroupcastError, EPOCH_TOPIC_MAX_SEGMENTS,
} from '../index.js';

const table = JSON.parse(readFileSync(new URL('../../../tests/fixtures/epoch-segments.json', import.meta.url), 'utf8'));

for (const c of table.epochs) {
  test(`epochAt and epochSegment give the table's epoch and segment: ${c.unix} s at ${c.period} s`, () => {
    assert.equal(epochAt(c.unix, c.period), c.epoch);
    assert.equal(epochSegment(epochAt(c.unix, c.period)), c.segment);
    assert.equal(parseEpochSegment(c.segment), c.epoch);
  });
}

for (const c of table.segments) {
  test(`parseEpochSegment reads the table's segment ${JSON.stringify(c.segment)} as ${c.epoch}`, () => {
    assert.equal(parseEpochSegment(c.segment), c.epoch);
    if (c.epoch !== null) assert.equal(epochSegment(c.epoch), c.segment);
  });
}

function refused(fn, field, rule, message) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof GroupcastError, `not a GroupcastError: ${e}`);
    assert.equal(e.field, field);
    assert.equal(e.rule, rule);
    if (message) assert.match(e.message, message);
    return true;
  });
}

test('the window holds the previous epoch only during the grace, as groupcast::epoch::window does', () => {
  // P = 10 s: grace 5 s (the Rust unit test's rows).
  assert.deepEqual(epochWindow(100_000, 10), [9, 10, 11]);
  assert.deepEqual(epochWindow(104_999, 10), [9, 10, 11]);
  assert.deepEqual(epochWindow(105_000, 10), [10, 11]);
  assert.equal(epochNextChange(100_000, 10), 105_000);
  assert.equal(epochNextChange(105_000, 10), 110_000);
  // The grace is at most 30 s; epoch 0 has no previous one.
  assert.deepEqual(epochWindow(3600_000 + 29_999, 3600), [0, 1, 2]);
  assert.deepEqual(epochWindow(3600_000 + 30_000, 3600), [1, 2]);
  assert.deepEqual(epochWindow(0, 2), [0, 1]);
});

test('periods outside 2..86400 seconds are refused with the Rust text', () => {
  for (const p of [0, 1, 86401, 2.5, '300', null, undefined, NaN]) {
    refused(() => epochAt(1, p), 'epochSeconds', 'epoch-seconds', /an epoch lasts 2-86400 seconds/);
  }
  refused(() => epochAt(-1, 300), 'unixSeconds', 'time');
  refused(() => epochSegment(-1), 'epoch', 'epoch');
  refused(() => epochSegment(1e15), 'epoch', 'epoch');
  refused(() => epochSegment(1.5), 'epoch', 'epoch');
});

test('eventsChannel puts the epoch between the group and the topic, and keeps the old call unchanged', () => {
  assert.equal(eventsChannel('live', 'Team_B', 'jobs/*'), '/live/x--Team-5fB/jobs/*');
  assert.equal(eventsChannel('live', 'team-a', 'jobs/*', { epochSeconds: 300, epoch: 5983333 }), '/live/team-a/t5983333/jobs/*');
  assert.equal(eventsChannel('live', 'team-a', '*', { epochSeconds: 0 }), '/live/team-a/*');
  const now = epochAt(Date.now() / 1000, 60);
  const ch = eventsChannel('live', 'team-a', 'x', { epochSeconds: 60 });
  assert.ok([`/live/team-a/t${now}/x`, `/live/team-a/t${now + 1}/x`].includes(ch), ch);
});

test('in an epoch namespace a topic has at most two segments, a final * included', () => {
  assert.equal(EPOCH_TOPIC_MAX_SEGMENTS, 2);
  assert.equal(eventsChannel('live', 'g', 'a/*', { epochSeconds: 60, epoch: 1 }), '/live/g/t1/a/*');
  refused(() => eventsChannel('live', 'g', 'a/b/*', { epochSeconds: 60, epoch: 1 }), 'topic', 'segments', /EPOCH_TOPIC_MAX_SEGMENTS/);
  refused(() => eventsChannel('live', 'g', 'a/b/c', { epochSeconds: 60, epoch: 1 }), 'topic', 'segments');
  refused(() => eventsChannel('live', 'g', 'a', { epochSeconds: 1, epoch: 1 }), 'epochSeconds', 'epoch-seconds');
});

// A fake clock: timers run in order of their due time as `advance` moves the clock.
function fakeClock(start) {
  let t = start;
  let nextId = 1;
  const timers = new Map();
  return {
    now: () => t,
    setTimer: (fn, ms) => {
      const id = nextId++;
      timers.set(id, { at: t + ms, fn });
      return id;
    },
    clearTimer: (id) => timers.delete(id),
    pending: () => timers.size,
    async advance(ms) {
      const until = t + ms;
      for (;;) {
        await settle();
        const due = [...timers.entries()].filter(([, x]) => x.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        t = due[1].at;
        due[1].fn();
      }
      t = until;
      await settle();
    },
    // The clock leaps (a laptop waking up): the timers due meanwhile fire late, all at the new time.
    async jump(ms) {
      t += ms;
      const due = [...timers.entries()].filter(([, x]) => x.at <= t);
      for (const [id, x] of due) {
        timers.delete(id);
        x.fn();
      }
      await settle();
    },
  };
}
const settle = () => new Promise((r) => setImmediate(r));

// A fake service: records subscribe/unsubscribe in order; `refuse` makes a channel's subscribe reject.
function fakeService() {
  const log = [];
  const live = new Set();
  const refuse = new Map();
  return {
    log,
    live,
    refuse,
    subscribe: async (channel) => {
      log.push(`+${channel}`);
      if (refuse.has(channel)) throw refuse.get(channel);
      live.add(channel);
      return () => {
        log.push(`-${channel}`);
        live.delete(channel);
      };
    },
  };
}

test('keepSubscribed holds the window, adds the next epoch at a boundary and drops the old one after the grace', async () => {
  // P = 2 s, grace 1 s. Start 0.5 s into epoch 500 000.
  const clock = fakeClock(1_000_000_500);
  const svc = fakeService();
  const ch = (n) => `/live/team-a/t${n}/jobs/*`;
  const stop = keepSubscribed({ namespace: 'live', group: 'team-a', topic: 'jobs/*', epochSeconds: 2, subscribe: svc.subscribe, ...clock });
  await clock.advance(0);
  assert.deepEqual([...svc.live].sort(), [ch(499999), ch(500000), ch(500001)]);
  // Grace over (1 s into the epoch): the previous epoch goes.
  await clock.advance(500);
  assert.deepEqual([...svc.live].sort(), [ch(500000), ch(500001)]);
  assert.equal(svc.log.at(-1), `-${ch(499999)}`);
  // Next epoch: its successor is subscribed, the one just ended stays for the grace.
  await clock.advance(1000);
  assert.deepEqual([...svc.live].sort(), [ch(500000), ch(500001), ch(500002)]);
  // Across many boundaries, the channel of the current epoch is always held, and every epoch was
  // subscribed before the one two before it was dropped.
  for (let i = 0; i < 20; i += 1) {
    await clock.advance(250);
    const current = Math.floor(clock.now() / 2000);
    assert.ok(svc.live.has(ch(current)) && svc.live.has(ch(current + 1)), `at ${clock.now()}: ${[...svc.live]}`);
  }
  for (const entry of svc.log.filter((e) => e.startsWith('-'))) {
    const n = Number(entry.split('/')[3].slice(1));
    assert.ok(svc.log.indexOf(`+${ch(n + 2)}`) < svc.log.indexOf(entry), `${entry} before +${ch(n + 2)}`);
  }
  // Each channel subscribed exactly once.
  const adds = svc.log.filter((e) => e.startsWith('+'));
  assert.equal(new Set(adds).size, adds.length);
  await stop();
  assert.equal(svc.live.size, 0);
  assert.equal(clock.pending(), 0);
});

test('keepSubscribed subscribes new epochs before unsubscribing dropped ones, even when the clock jumps', async () => {
  const clock = fakeClock(1_000_001_500); // epoch 500 000, after its grace
  const svc = fakeService();
  const stop = keepSubscribed({ namespace: 'live', group: 'g', topic: 'x', epochSeconds: 2, subscribe: svc.subscribe, ...clock });
  await clock.advance(0);
  assert.deepEqual(svc.log, ['+/live/g/t500000/x', '+/live/g/t500001/x']);
  svc.log.length = 0;
  await clock.jump(10_000); // five epochs later: the whole window changes at once
  const lastAdd = Math.max(...svc.log.map((e, i) => (e.startsWith('+') ? i : -1)));
  const firstDrop = svc.log.findIndex((e) => e.startsWith('-'));
  assert.ok(firstDrop > lastAdd, svc.log.join(' '));
  assert.deepEqual([...svc.live].sort(), ['/live/g/t500005/x', '/live/g/t500006/x']);
  await stop();
});

test('a refused next epoch ends the rotation, unsubscribes everything and reports the reason', async () => {
  const clock = fakeClock(1_000_001_500);
  const svc = fakeService();
  const errors = [];
  keepSubscribed({
    namespace: 'live', group: 'g', topic: 'x', epochSeconds: 2, subscribe: svc.subscribe, ...clock,
    onError: (error, channel) => errors.push([error.message, channel]),
  });
  await clock.advance(0);
  svc.refuse.set('/live/g/t500002/x', new Error('Unauthorized: not in group g'));
  await clock.advance(500); // the boundary: t500002 is due
  assert.deepEqual(errors, [['Unauthorized: not in group g', '/live/g/t500002/x']]);
  assert.equal(svc.live.size, 0);
  assert.equal(clock.pending(), 0);
  await clock.advance(10_000);
  assert.equal(svc.live.size, 0, 'nothing is subscribed again after the refusal');
});

test('without epochSeconds keepSubscribed subscribes the plain channel once', async () => {
  const clock = fakeClock(5);
  const svc = fakeService();
  const stop = keepSubscribed({ namespace: 'live', group: 'g', topic: '*', subscribe: svc.subscribe, ...clock });
  await clock.advance(100_000);
  assert.deepEqual(svc.log, ['+/live/g/*']);
  await stop();
  assert.deepEqual(svc.log, ['+/live/g/*', '-/live/g/*']);
});

test('keepSubscribed checks its inputs before subscribing anything', () => {
  const subscribe = () => assert.fail('subscribed');
  refused(() => keepSubscribed({ namespace: 'live', group: '', topic: 'x', epochSeconds: 2, subscribe }), 'group', 'empty');
  refused(() => keepSubscribed({ namespace: 'live', group: 'g', topic: 'a/b/c', epochSeconds: 2, subscribe }), 'topic', 'segments');
  refused(() => keepSubscribed({ namespace: 'live', group: 'g', topic: 'x', epochSeconds: 1, subscribe }), 'epochSeconds', 'epoch-seconds');
  refused(() => keepSubscribed({ namespace: 'live', group: 'g', topic: 'x', epochSeconds: 2 }), 'subscribe', 'function');
});

test('stop during a pending subscribe unsubscribes it once it resolves', async () => {
  const clock = fakeClock(1_000_001_500);
  const live = new Set();
  let release;
  const gate = new Promise((r) => { release = r; });
  const subscribe = async (channel) => {
    await gate;
    live.add(channel);
    return () => live.delete(channel);
  };
  const stop = keepSubscribed({ namespace: 'live', group: 'g', topic: 'x', epochSeconds: 2, subscribe, ...clock });
  const done = stop();
  release();
  await done;
  assert.equal(live.size, 0);
});
