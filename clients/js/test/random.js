// Seeded random group names for the property tests: the same names on every run, so a failure
// names a string that reproduces it.

/** mulberry32: a small seeded generator of floats in [0, 1). */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Pieces that stress the rule: what maps to itself, what forces encoding (`--`, edges, `_`, the
// prefix itself), multi-byte UTF-8 (2, 3 and 4 bytes), controls, and the characters that matter to
// channels, IoT topics and policies.
const PIECES = [
  ...'abcxyzABCXYZ0189',
  '-', '--', 'x--', '_', ' ', '.', '*', '/', '#', '+', '?', '$', '%', '"', '\\', "'", '\n', '\t', '\0', '\x7f',
  'é', 'ß', 'А', '東京', '\u00a0', '\u200b', '\ufeff', '\uffff', '😀', '\u{10ffff}', 'ＡＤＭＩＮ',
];

/** `count` Unicode strings (no lone surrogates), 0–60 UTF-16 units, from `seed`. */
export function names(seed, count) {
  const next = rng(seed);
  const out = [];
  for (let i = 0; i < count; i += 1) {
    const shape = next();
    let s = '';
    if (shape < 0.3) {
      // Mostly segment characters: many map to themselves, some hit the edges and `--`.
      const len = Math.floor(next() * 55);
      for (let j = 0; j < len; j += 1) s += 'aZ9-x'[Math.floor(next() * 5)];
    } else {
      const len = Math.floor(next() * 20);
      for (let j = 0; j < len; j += 1) s += PIECES[Math.floor(next() * PIECES.length)];
    }
    out.push(s.length > 60 ? s.slice(0, 60).replace(/[\ud800-\udbff]$/, '') : s);
  }
  return out;
}
