'use strict';
// The rule every template must implement, stated independently of them: what a subscriber may receive.
// A user may receive a message iff the message names at least one of the user's groups. A subscription
// receives a message iff the message names one of the subscription's groups (onlyGroups, by default all of the
// user's groups) and its topic begins with the subscription's prefix.

function authorized(userGroups, message) {
  return Array.isArray(message.groups) && message.groups.some((g) => userGroups.includes(g));
}

function intended(userGroups, args, message) {
  const wanted = args.onlyGroups == null ? userGroups : args.onlyGroups;
  const prefix = args.prefix == null ? '' : args.prefix;
  return (
    Array.isArray(message.groups) &&
    message.groups.some((g) => wanted.includes(g) && userGroups.includes(g)) &&
    typeof message.topic === 'string' &&
    message.topic.startsWith(prefix)
  );
}

/// Probe messages: one per group of the universe (own groups, their look-alikes, strangers), a multi-group
/// message, topics inside and outside the prefix.
function probes(userGroups, args, extraGroups = []) {
  const prefix = args.prefix == null ? '' : args.prefix;
  const variants = (g) => [g, g.toUpperCase(), g.toLowerCase(), `${g} `, ` ${g}`, `${g}\u200b`, g.normalize('NFD'), `${g}x`, g.slice(0, -1)];
  const universe = [...new Set([...userGroups.flatMap(variants), ...extraGroups, 'admins', 'root', '*', '', 'stranger'])].filter((g) => g !== '' || true);
  const topics = [...new Set([`${prefix}news`, `${prefix}`, 'other/topic', `x${prefix}`, prefix.slice(0, -1)])];
  const out = [];
  for (const g of universe) for (const topic of topics) out.push({ topic, data: '{}', groups: [g], uuid: 'u' });
  out.push({ topic: `${prefix}multi`, data: '{}', groups: ['stranger', ...userGroups.slice(0, 1)], uuid: 'u' });
  out.push({ topic: `${prefix}none`, data: '{}', groups: [], uuid: 'u' });
  return out;
}

module.exports = { authorized, intended, probes };
