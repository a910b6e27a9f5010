// The page: the official aws-amplify clients (Events `events.connect`, GraphQL `generateClient`)
// and `mqtt` over WSS, configured from the local stack's amplify_outputs.json, with channels and
// topics from groupcast's JS channel helper (clients/js). It subscribes the picked user to each of
// their groups on every transport, plus one group they are NOT in (the stack must refuse it, and
// the page marks it refused), and lists every message that arrives.
//
// Served by ../serve.mjs: /amplify_outputs.json (the stack's), /users.json (the users it minted
// tokens for) and /session/{user}.json ({token, groups, foreign, namespace, iot: {url, clientId,
// topicPrefix}}: the token from the local issuer, the IoT URL presigned with the user's
// identity-pool credentials).
import { Amplify } from 'aws-amplify';
import { events, generateClient } from 'aws-amplify/data';
import { Hub } from 'aws-amplify/utils';
import { decodeJWT } from '@aws-amplify/core';
import mqtt from 'mqtt';
import { eventsChannel, iotTopic } from '@groupcast/channels';

const $ = (sel, root = document) => root.querySelector(sel);
const SUBSCRIPTION = `subscription Subscribe($prefix: String, $onlyGroups: [String!]) {
  subscribe(prefix: $prefix, onlyGroups: $onlyGroups) { topic data groups uuid }
}`;

let pending = 0;
/// A row for one subscription; returns {ready(), refused(reason)}. When every row is answered the
/// body gets data-settled="true" (the browser test waits for it).
function row(transport, label) {
  const li = document.createElement('li');
  li.className = 'sub pending';
  li.dataset.sub = label;
  li.textContent = `… ${label}`;
  $(`section[data-transport="${transport}"] .subs`).append(li);
  pending += 1;
  let done = false;
  const settle = (cls, text) => {
    if (done) return;
    done = true;
    li.className = `sub ${cls}`;
    li.dataset.status = cls;
    li.textContent = text;
    pending -= 1;
    if (pending === 0) document.body.dataset.settled = 'true';
  };
  return {
    ready: () => settle('ready', `✔ subscribed ${label}`),
    refused: (why) => settle('refused', `✖ REFUSED ${label}: ${why}`),
  };
}

function show(transport, sub, m) {
  const li = document.createElement('li');
  li.className = 'msg';
  Object.assign(li.dataset, { transport, sub, id: m.id, groups: JSON.stringify(m.groups), topic: m.topic });
  li.innerHTML = '<span class="t"></span> <span class="groups"></span> <span class="d"></span>';
  li.querySelector('.t').textContent = `${new Date().toISOString().slice(11, 23)} ${m.topic}`;
  li.querySelector('.groups').textContent = JSON.stringify(m.groups);
  li.querySelector('.d').textContent = JSON.stringify(m.data);
  $(`section[data-transport="${transport}"] .msgs`).prepend(li);
}

const why = (e) => (e && (e.errors ? JSON.stringify(e.errors) : e.message)) || String(e);

function subscribeEvents(s) {
  // Every channel at once: one refused or slow channel must not hold the others back.
  return Promise.all(
    [...s.groups.map((g) => [g, g]), [`${s.foreign} (not mine)`, s.foreign]].map(async ([label, group]) => {
      const channelPath = eventsChannel(s.namespace, group, '*');
      const r = row('events', `${label} ${channelPath}`);
      try {
        const channel = await events.connect(channelPath);
        const sub = channel.subscribe({ next: (d) => show('events', channelPath, d.event), error: (e) => r.refused(why(e)) });
        sub.ready.then(r.ready, (e) => r.refused(why(e)));
      } catch (e) {
        r.refused(why(e));
      }
    }),
  );
}

async function subscribeGraphql(s) {
  const client = generateClient();
  // The foreign group first, and alone: on an `Unauthorized` subscription error Amplify closes the
  // shared WebSocket to reconnect with fresh tokens, and a subscription already on that socket
  // would silently stop receiving. The user's own subscription opens after the refusal settled.
  // Both rows exist before the first answer, so the page is not "settled" between the two.
  const plans = [[`${s.foreign} (not mine)`, [s.foreign]], [s.groups.join(','), s.groups]].map(([label, onlyGroups]) => [label, onlyGroups, row('graphql', `onlyGroups ${label}`)]);
  for (const [label, onlyGroups, r] of plans) {
    const variables = { onlyGroups };
    await new Promise((answered) => {
      const off = Hub.listen('api', ({ payload }) => {
        if (payload.event === 'Subscription ack' && JSON.stringify(payload.data && payload.data.variables) === JSON.stringify(variables)) {
          off();
          r.ready();
          answered();
        }
      });
      client.graphql({ query: SUBSCRIPTION, variables, authMode: 'userPool' }).subscribe({
        next: ({ data }) => {
          const m = data.subscribe;
          show('graphql', label, { id: m.uuid, topic: m.topic, groups: m.groups, data: typeof m.data === 'string' ? JSON.parse(m.data) : m.data });
        },
        error: (e) => {
          off();
          r.refused(why(e));
          setTimeout(answered, 500);
        },
      });
    });
  }
}

function subscribeIot(s) {
  // The foreign topic gets its own connection: IoT may close a connection whose subscribe the policy denies.
  const plans = [
    [s.groups.join(','), s.groups, `${s.iot.clientId}-web`],
    [`${s.foreign} (not mine)`, [s.foreign], `${s.iot.clientId}-webx`],
  ];
  for (const [, groups, clientId] of plans) {
    const client = mqtt.connect(s.iot.url, { clientId, protocolVersion: 4, reconnectPeriod: 0, clean: true });
    const rows = groups.map((g) => [iotTopic(s.iot.topicPrefix, g, '#'), row('iot', `${g === s.foreign ? `${g} (not mine)` : g} ${iotTopic(s.iot.topicPrefix, g, '#')}`)]);
    client.on('error', (e) => rows.forEach(([, r]) => r.refused(`mqtt: ${e.message}`)));
    client.on('close', () => rows.forEach(([, r]) => r.refused('mqtt: connection closed')));
    client.on('message', (topic, payload) => {
      try {
        show('iot', topic, JSON.parse(new TextDecoder().decode(payload)));
      } catch {
        show('iot', topic, { id: '?', topic, groups: [], data: new TextDecoder().decode(payload) });
      }
    });
    client.on('connect', () => {
      for (const [topic, r] of rows) {
        client.subscribe(topic, { qos: 1 }, (err, granted) => {
          if (err) return r.refused(`SUBACK: ${err.message}`);
          if (!granted || granted.some((g) => g.qos === 128)) return r.refused('SUBACK 0x80 (not authorized)');
          r.ready();
        });
      }
    });
  }
}

async function main() {
  const [outputs, users] = await Promise.all([fetch('/amplify_outputs.json').then((r) => r.json()), fetch('/users.json').then((r) => r.json())]);
  const select = $('#user');
  for (const u of users) select.append(new Option(u, u));
  const user = new URLSearchParams(location.search).get('user') || users[0];
  select.value = user;
  // Switching user reloads the page: Amplify's realtime connections belong to one identity.
  select.onchange = () => (location.search = `?user=${encodeURIComponent(select.value)}`);
  const s = await fetch(`/session/${encodeURIComponent(user)}.json`).then((r) => r.json());
  $('#who').textContent = `${user} in ${JSON.stringify(s.groups)}`;
  document.body.dataset.user = user;
  const jwt = decodeJWT(s.token);
  // The locally minted token is the session's; no credentials provider: nothing calls the real Cognito.
  Amplify.configure(outputs, {
    Auth: {
      tokenProvider: { getTokens: async () => ({ idToken: jwt, accessToken: jwt }) },
      credentialsProvider: { getCredentialsAndIdentityId: async () => undefined, clearCredentialsAndIdentityId: () => {} },
    },
  });
  subscribeIot(s);
  await Promise.all([subscribeGraphql(s), subscribeEvents(s)]);
}

main().catch((e) => {
  document.body.dataset.error = why(e);
  $('#who').textContent = `error: ${why(e)}`;
});
