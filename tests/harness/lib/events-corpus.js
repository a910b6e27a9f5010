'use strict';
// The Events handler's adversarial corpus (events.test.js), in a module of its own so that the
// engine parity test of provisioner/appsync-js (its tests/node/events-verdicts.js) replays exactly
// these cases: identities, channels and the expected verdicts.

// Identities as AppSync Events builds them (context-reference.html#context-reference-identity). The mode is
// told by the issuer (Cognito, OIDC), handlerContext (Lambda) or userArn (IAM): harness.toml's values.
const ISS = 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123';
const OIDC_ISS = 'https://idp.example.invalid';
const cognito = (groups, extra = {}) => ({ sub: 's1', username: 'alice', issuer: ISS, groups, claims: { iss: ISS, 'cognito:groups': groups }, sourceIp: ['1.2.3.4'], defaultAuthStrategy: 'ALLOW', ...extra });
const cognitoWithout = (claims = {}) => ({ sub: 's1', username: 'alice', issuer: ISS, claims: { iss: ISS, ...claims }, sourceIp: ['1.2.3.4'] });
const lambda = (handlerContext) => ({ handlerContext });
const lambdaGroups = (groups) => lambda({ sub: 's1', groups: JSON.stringify(groups) });
const oidc = (claims, issuer = OIDC_ISS) => ({ sub: 's2', issuer, claims: { iss: issuer, ...claims } });
const PUBLISHER = 'arn:aws:sts::123456789012:assumed-role/harness-publisher/';
const iamCaller = (userArn, extra = {}) => ({ accountId: '123456789012', userArn, username: 'AROAEXAMPLE:x', sourceIp: ['1.2.3.4'], cognitoIdentityPoolId: null, cognitoIdentityId: null, cognitoIdentityAuthType: null, cognitoIdentityAuthProvider: null, ...extra });
const iam = iamCaller(`${PUBLISHER}publisher-lambda`);

// [attack, identity, channel, expected: true (admitted) or a RegExp the rejection reason must match]
const corpus = [
  // Channel shapes.
  ['channel /ns without a group segment', cognito(['team-a']), '/live', /no group segment/],
  ['channel /ns/ with an empty group segment', cognito(['team-a']), '/live/', /no group segment/],
  ['channel /ns/* (every group)', cognito(['team-a']), '/live/*', /wildcard/],
  ['channel /ns/*/x', cognito(['team-a']), '/live/*/x', /wildcard/],
  ['channel /ns/a* (prefix wildcard)', cognito(['a', 'ab']), '/live/a*', /wildcard/],
  ['channel /ns/team-a* by a team-a member', cognito(['team-a']), '/live/team-a*', /wildcard/],
  ['channel /ns/*team-a', cognito(['team-a']), '/live/*team-a', /wildcard/],
  ['a 6-segment channel', cognito(['team-a']), '/live/team-a/b/c/d/e', /more than 5 segments/],
  ['a 5-segment channel of an own group', cognito(['team-a']), '/live/team-a/b/c/d', true],
  ['a trailing wildcard under an own group', cognito(['team-a']), '/live/team-a/*', true],
  ['a wildcard in the middle of the topic', cognito(['team-a']), '/live/team-a/*/x', /segment 2 is not/],
  ['an empty segment before the group', cognito(['team-a']), '/live//team-a', /segment 1 is not/],
  ['an empty topic segment', cognito(['team-a']), '/live/team-a//x', /segment 2 is not/],
  ['another namespace on this handler', cognito(['team-a']), '/jobs/team-a', /not in namespace live/],
  ['no channel path', cognito(['team-a']), null, /channel path is missing/],
  ['the raw group name instead of its segment', cognito(['Team_B']), '/live/Team_B', /segment 1 is not/],
  ['a segment with a dot-dot', cognito(['team-a']), '/live/../team-a', /segment 1 is not/],
  ['channel without the leading slash', cognito(['team-a']), 'live/team-a/x', true],
  // Membership.
  ['another group\'s channel', cognito(['team-a']), '/live/team-b', /in no group whose segment is team-b/],
  ['a case variant of an own group', cognito(['team-a']), '/live/Team-a', /in no group whose segment/],
  ['a Cyrillic look-alike member asking for admins', cognito(['\u0430dmins']), '/live/admins', /in no group whose segment/],
  ['a Cyrillic look-alike member on their own channel', cognito(['\u0430dmins']), '/live/x---d0-b0dmins', true],
  ['a fullwidth look-alike member asking for ADMIN', cognito(['ＡＤＭＩＮ']), '/live/ADMIN', /in no group whose segment/],
  ['a member of group * on its encoded channel', cognito(['*']), '/live/x---2a', true],
  ['a non-member of group * on its encoded channel', cognito(['team-a']), '/live/x---2a', /in no group whose segment/],
  ['a group literally named like an encoding (x---2a)', cognito(['x---2a']), '/live/x---2a', /in no group whose segment/],
  ['a member of Team_B on its encoded channel', cognito(['Team_B']), '/live/x--Team-5fB', true],
  ['a member of team_b asking for Team_B', cognito(['team_b']), '/live/x--Team-5fB', /in no group whose segment/],
  ['names with quotes and backslashes', cognito(['quo"te', 'back\\slash']), '/live/x--quo-22te/x', true],
  ['a quote member asking for the unquoted name', cognito(['quo"te']), '/live/quote', /in no group whose segment/],
  ['names with # $ / +', cognito(['#', '$aws', 'a/b', 'a+b']), '/live/a', /in no group whose segment/],
  ['a member of a/b on its encoded channel', cognito(['a/b']), '/live/x--a-2fb', true],
  ['a group name longer than a segment, truncated', cognito(['z'.repeat(51)]), `/live/${'z'.repeat(50)}`, /in no group whose segment/],
  ['a prefix of an own group name', cognito(['team-abc']), '/live/team-a', /in no group whose segment/],
  // Identities.
  ['Cognito groups null', cognito(null), '/live/team-a', /Cognito groups is not a list/],
  ['Cognito groups empty', cognito([]), '/live/team-a', /in no group/],
  ['Cognito identity without groups', cognitoWithout(), '/live/team-a', /Cognito groups is not a list/],
  ['Cognito identity without groups but with claims.groups', cognitoWithout({ groups: ['team-a'], 'cognito:groups': ['team-a'] }), '/live/team-a', /Cognito groups is not a list/],
  ['Cognito identity with groups null and its groups in the claims', cognito(null, { claims: { iss: ISS, groups: ['team-a'], 'cognito:groups': ['team-a'], roles: ['team-a'] } }), '/live/team-a', /Cognito groups is not a list/],
  ['Cognito identity with the OIDC claim, not its groups', cognitoWithout({ roles: ['team-a'] }), '/live/team-a', /Cognito groups is not a list/],
  ['Cognito identity of the pool\'s multi-Region issuer', cognito(['team-a'], { issuer: 'https://issuer-cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123' }), '/live/team-a', true],
  ['Cognito identity of another user pool', cognito(['team-a'], { issuer: 'https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other' }), '/live/team-a', /issuer/],
  ['Cognito issuer with a trailing slash', cognito(['team-a'], { issuer: `${ISS}/`, claims: { roles: ['team-a'] } }), '/live/team-a', /issuer/],
  ['an identity whose issuer is null, with groups where OIDC keeps them', { sub: 's2', issuer: null, claims: { roles: ['team-a'] } }, '/live/team-a', /issuer/],
  ['an unknown issuer with groups where OIDC keeps them', oidc({ roles: ['team-a'] }, 'https://evil.example.invalid'), '/live/team-a', /issuer/],
  ['an identity without issuer, handlerContext or userArn, holding groups', { sub: 's1', groups: ['team-a'], claims: { roles: ['team-a'] } }, '/live/team-a', /unexpected shape/],
  ['an identity with an issuer and a handlerContext', { ...cognito(['team-a']), handlerContext: { groups: '["team-a"]' } }, '/live/team-a', /unexpected shape/],
  ['an identity with an issuer and a userArn', { ...cognito(['team-a']), userArn: `${PUBLISHER}x` }, '/live/team-a', /unexpected shape/],
  ['an identity that is a list', [cognito(['team-a'])], '/live/team-a', /unexpected shape/],
  ['Cognito groups holding a number', cognito(['team-a', 5]), '/live/team-a', /not a string/],
  ['Cognito groups as a string', cognito('team-a'), '/live/team-a', /not a list/],
  ['API key caller (no identity)', null, '/live/team-a', /no caller identity/],
  ['IAM caller subscribing', iam, '/live/team-a', /AWS_IAM does not subscribe/],
  ['Lambda authorizer context without groups', lambda({ sub: 's1' }), '/live/team-a', /no handlerContext.groups/],
  ['Lambda authorizer context null', lambda(null), '/live/team-a', /no handlerContext.groups/],
  ['Lambda groups empty list', lambdaGroups([]), '/live/team-a', /in no group/],
  ['Lambda groups that are not JSON (JSON.parse gives "")', lambda({ groups: 'team-a' }), '/live/team-a', /not a list/],
  ['Lambda groups that are empty text', lambda({ groups: '' }), '/live/team-a', /not a list/],
  ['Lambda groups as a JSON string', lambda({ groups: '"team-a"' }), '/live/team-a', /not a list/],
  ['Lambda groups as an array-like object', lambda({ groups: '{"0":"team-a","length":1}' }), '/live/team-a', /not a list/],
  ['Lambda groups nested', lambda({ groups: '[["team-a"]]' }), '/live/team-a', /not a string/],
  ['Lambda groups as a real array, not text', lambda({ groups: ['team-a'] }), '/live/team-a', /not JSON text/],
  ['Lambda groups holding null', lambda({ groups: '[null]' }), '/live/team-a', /not a string/],
  ['Lambda groups with a lone surrogate', lambda({ groups: '["\\ud800"]' }), '/live/x---ed-a0-80', /in no group whose segment/],
  ['Lambda context with a __proto__ key', lambda(JSON.parse('{"__proto__":{"groups":"[\\"team-a\\"]"}}')), '/live/team-a', /no handlerContext.groups/],
  ['Lambda context plus forged Cognito groups', { handlerContext: { groups: '["team-b"]' }, groups: ['team-a'] }, '/live/team-a', /in no group whose segment/],
  ['Lambda groups of a member', lambdaGroups(['team-b', 'team-a']), '/live/team-a/chat', true],
  ['OIDC caller with groups in the configured claim', oidc({ roles: ['team-a'] }), '/live/team-a', true],
  ['OIDC caller with groups in another claim', oidc({ groups: ['team-a'] }), '/live/team-a', /claim roles is not a list/],
  ['OIDC caller with Cognito-style groups beside the claims', { ...oidc({}), groups: ['team-a'] }, '/live/team-a', /claim roles is not a list/],
  ['OIDC caller with claims that are not an object', { sub: 's2', issuer: OIDC_ISS, claims: 'roles' }, '/live/team-a', /claim roles is not a list/],
  ['OIDC claim as a space-separated string', oidc({ roles: 'team-a team-b' }), '/live/team-a', /not a list/],
];

const events = [{ id: 'e1', payload: { topic: 'x', data: {} } }];
const publishCorpus = [
  ['the publisher role\'s session on a group channel', iam, '/live/team-a/chat', true],
  ['another session of the publisher role', iamCaller(`${PUBLISHER}i-0123`), '/live/team-a/chat', true],
  ['a session of an extra publisher role (its path is not in assumed-role ARNs)', iamCaller('arn:aws:sts::123456789012:assumed-role/ops-publisher/deploy'), '/live/team-a', true],
  ['an extra publisher IAM user', iamCaller('arn:aws:iam::123456789012:user/ci-publisher'), '/live/team-a', true],
  ['a role whose name extends the publisher\'s (harness-publisher-evil)', iamCaller('arn:aws:sts::123456789012:assumed-role/harness-publisher-evil/x'), '/live/team-a', /is not one/],
  ['a role named like the publisher with a suffix and no separator', iamCaller('arn:aws:sts::123456789012:assumed-role/harness-publisherx/x'), '/live/team-a', /is not one/],
  ['the publisher role\'s prefix with an empty session name', iamCaller(PUBLISHER), '/live/team-a', /is not one/],
  ['the publisher role\'s prefix with a session holding a slash', iamCaller(`${PUBLISHER}a/b`), '/live/team-a', /is not one/],
  ['the publisher role in another account', iamCaller('arn:aws:sts::999999999999:assumed-role/harness-publisher/x'), '/live/team-a', /is not one/],
  ['the publisher role\'s ARN itself, not a session', iamCaller('arn:aws:iam::123456789012:role/harness-publisher'), '/live/team-a', /is not one/],
  ['an IAM user whose name extends the extra user\'s', iamCaller('arn:aws:iam::123456789012:user/ci-publisher2'), '/live/team-a', /is not one/],
  ['the extra user ARN with something after it', iamCaller('arn:aws:iam::123456789012:user/ci-publisher/x'), '/live/team-a', /is not one/],
  ['an end user\'s Cognito identity-pool session', iamCaller('arn:aws:sts::123456789012:assumed-role/acme-identity-pool-auth/CognitoIdentityCredentials', { cognitoIdentityPoolId: 'us-east-1:0c9d9c1e-0000-4000-8000-000000000000', cognitoIdentityId: 'us-east-1:11111111-2222-3333-4444-555555555555', cognitoIdentityAuthType: 'authenticated' }), '/live/team-a', /identity-pool session/],
  ['an identity-pool session on the publisher role itself', iamCaller(`${PUBLISHER}CognitoIdentityCredentials`, { cognitoIdentityPoolId: 'us-east-1:0c9d9c1e-0000-4000-8000-000000000000' }), '/live/team-a', /identity-pool session/],
  ['a Cognito user carrying a forged publisher userArn', { ...cognito(['team-a']), userArn: `${PUBLISHER}x` }, '/live/team-a/chat', /not an IAM principal/],
  ['a Lambda-authorized caller carrying a forged publisher userArn', { ...lambdaGroups(['team-a']), userArn: `${PUBLISHER}x` }, '/live/team-a/chat', /not an IAM principal/],
  ['an IAM identity whose userArn is not a string', iamCaller(['arn:aws:sts::123456789012:assumed-role/harness-publisher/x']), '/live/team-a', /not an IAM principal/],
  ['an IAM identity without userArn', { accountId: '123456789012', username: 'x' }, '/live/team-a', /not an IAM principal/],
  ['a Cognito user publishing', cognito(['team-a']), '/live/team-a/chat', /not an IAM principal/],
  ['a Lambda-authorized caller publishing', lambdaGroups(['team-a']), '/live/team-a/chat', /not an IAM principal/],
  ['an API key publishing', null, '/live/team-a', /not an IAM principal/],
  ['IAM publishing to /ns/*', iam, '/live/*', /wildcard/],
  ['IAM publishing to /ns/a/*', iam, '/live/team-a/*', /publish channels hold no wildcard/],
  ['IAM publishing to /ns', iam, '/live', /no group segment/],
  ['IAM publishing to a raw group name', iam, '/live/Team_B', /segment 1 is not/],
];
// A namespace subscribes only with its auth modes; an identity of another mode the API knows is refused even
// when its groups would match (modes.toml: the API knows Lambda and OIDC callers, the namespace subscribes with
// Cognito only).
const modesCorpus = [
  ['a Cognito user of the configured pool (its own region)', cognito(['team-a'], { issuer: 'https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_PoolInEu1' }), true],
  ['a Cognito user of the pool\'s id under the project region', cognito(['team-a'], { issuer: 'https://cognito-idp.eu-central-1.amazonaws.com/eu-west-1_PoolInEu1' }), /issuer/],
  ['a Lambda-authorized member of the group', lambdaGroups(['team-a']), /AWS_LAMBDA does not subscribe/],
  ['an OIDC member of the group (groups claim)', oidc({ groups: ['team-a'] }), /OPENID_CONNECT does not subscribe/],
  ['the publisher subscribing', iamCaller('arn:aws:sts::210987654321:assumed-role/modes-publisher/x'), /AWS_IAM does not subscribe/],
  ['an API key caller', null, /no caller identity/],
];
// Text of handlerContext.groups that is no list of groups, whether JSON.parse returns "" (AWS) or throws.
const badLambdaGroupTexts = ['team-a', '', '[', '["team-a"', 'null', '{}'];


// Time-sliced channels (epochs.toml, namespace `live`, epoch_seconds = 300; groupcast::epoch). The server's clock is
// part of each case: [attack, identity, channel, server unix seconds, expected]. EPOCH_NOW is in epoch EPOCH_N;
// EPOCH_START is that epoch's first second.
const EPOCH_P = 300;
const EPOCH_NOW = 1795000000;
const EPOCH_N = Math.floor(EPOCH_NOW / EPOCH_P);
const EPOCH_START = EPOCH_N * EPOCH_P;
const N = EPOCH_N;
const at = (n) => `/live/team-a/t${n}`;
const NO_EPOCH = /channel segment 2 is not an epoch segment/;
const NOT_ADMITTED = /is not admitted: the server is in epoch/;
const epochCorpus = [
  // Shapes.
  ['every topic of the group, no epoch (/ns/seg/*)', cognito(['team-a']), '/live/team-a/*', EPOCH_NOW, NO_EPOCH],
  ['every epoch of the group (/ns/seg/t*)', cognito(['team-a']), '/live/team-a/t*', EPOCH_NOW, /segment 2 is not 1-50/],
  ['every epoch as a prefix wildcard (/ns/seg/t*/x)', cognito(['team-a']), '/live/team-a/t*/x', EPOCH_NOW, /segment 2 is not 1-50/],
  ['the epoch with a trailing wildcard (t{N}*)', cognito(['team-a']), `${at(N)}*`, EPOCH_NOW, /segment 2 is not 1-50/],
  ['no epoch at all (/ns/seg/topic)', cognito(['team-a']), '/live/team-a/topic', EPOCH_NOW, NO_EPOCH],
  ['no epoch and no topic (/ns/seg)', cognito(['team-a']), '/live/team-a', EPOCH_NOW, NO_EPOCH],
  ['the epoch in another position (/ns/seg/x/t{N})', cognito(['team-a']), `/live/team-a/x/t${N}`, EPOCH_NOW, NO_EPOCH],
  ['the epoch before the group (/ns/t{N}/seg)', cognito(['team-a']), `/live/t${N}/team-a`, EPOCH_NOW, NO_EPOCH],
  ['a leading zero (t0{N})', cognito(['team-a']), `/live/team-a/t0${N}`, EPOCH_NOW, NO_EPOCH],
  ['an upper-case prefix (T{N})', cognito(['team-a']), `/live/team-a/T${N}`, EPOCH_NOW, NO_EPOCH],
  ['a negative epoch (t-1)', cognito(['team-a']), '/live/team-a/t-1', EPOCH_NOW, NO_EPOCH],
  ['an epoch with a suffix (t{N}a)', cognito(['team-a']), `${at(N)}a`, EPOCH_NOW, NO_EPOCH],
  ['a bare t', cognito(['team-a']), '/live/team-a/t', EPOCH_NOW, NO_EPOCH],
  ['the epoch number without its t', cognito(['team-a']), `/live/team-a/${N}`, EPOCH_NOW, NO_EPOCH],
  ['16 digits (t1000000000000000)', cognito(['team-a']), '/live/team-a/t1000000000000000', EPOCH_NOW, NO_EPOCH],
  ['16 digits of the current epoch, zero-padded', cognito(['team-a']), `/live/team-a/t${String(N).padStart(16, '0')}`, EPOCH_NOW, NO_EPOCH],
  ['15 digits, far in the future', cognito(['team-a']), '/live/team-a/t999999999999999', EPOCH_NOW, NOT_ADMITTED],
  // Which epochs.
  ['a past epoch (N-2)', cognito(['team-a']), at(N - 2), EPOCH_NOW, NOT_ADMITTED],
  ['a long-past epoch (N-1000)', cognito(['team-a']), at(N - 1000), EPOCH_NOW, NOT_ADMITTED],
  ['epoch 0', cognito(['team-a']), at(0), EPOCH_NOW, NOT_ADMITTED],
  ['a far-future epoch (N+2)', cognito(['team-a']), at(N + 2), EPOCH_NOW, NOT_ADMITTED],
  ['a far-future epoch (N+10^6)', cognito(['team-a']), at(N + 1000000), EPOCH_NOW, NOT_ADMITTED],
  ['the previous epoch (N-1)', cognito(['team-a']), at(N - 1), EPOCH_NOW, true],
  ['the current epoch (N)', cognito(['team-a']), at(N), EPOCH_NOW, true],
  ['the next epoch (N+1)', cognito(['team-a']), at(N + 1), EPOCH_NOW, true],
  ['every topic of the current epoch (/ns/seg/t{N}/*)', cognito(['team-a']), `${at(N)}/*`, EPOCH_NOW, true],
  ['two topic levels (/ns/seg/t{N}/a/b)', cognito(['team-a']), `${at(N)}/a/b`, EPOCH_NOW, true],
  ['two topic levels and a wildcard (/ns/seg/t{N}/a/*)', cognito(['team-a']), `${at(N)}/a/*`, EPOCH_NOW, true],
  ['three topic levels (6 segments)', cognito(['team-a']), `${at(N)}/a/b/c`, EPOCH_NOW, /more than 5 segments/],
  ['a Lambda-authorized member on the current epoch', lambdaGroups(['team-a']), `${at(N)}/chat`, EPOCH_NOW, true],
  // Boundaries: exactly at the first second of epoch N, and at the last second of N-1 and of N.
  ['at the first second of N: N-1', cognito(['team-a']), at(N - 1), EPOCH_START, true],
  ['at the first second of N: N+1', cognito(['team-a']), at(N + 1), EPOCH_START, true],
  ['at the first second of N: N-2', cognito(['team-a']), at(N - 2), EPOCH_START, NOT_ADMITTED],
  ['at the first second of N: N+2', cognito(['team-a']), at(N + 2), EPOCH_START, NOT_ADMITTED],
  ['at the last second of N-1: N-2', cognito(['team-a']), at(N - 2), EPOCH_START - 1, true],
  ['at the last second of N-1: N', cognito(['team-a']), at(N), EPOCH_START - 1, true],
  ['at the last second of N-1: N+1', cognito(['team-a']), at(N + 1), EPOCH_START - 1, NOT_ADMITTED],
  ['at the last second of N: N+1', cognito(['team-a']), at(N + 1), EPOCH_START + EPOCH_P - 1, true],
  ['at the last second of N: N-1', cognito(['team-a']), at(N - 1), EPOCH_START + EPOCH_P - 1, true],
  ['at the last second of N: N-2', cognito(['team-a']), at(N - 2), EPOCH_START + EPOCH_P - 1, NOT_ADMITTED],
  ['at the last second of N: N+2', cognito(['team-a']), at(N + 2), EPOCH_START + EPOCH_P - 1, NOT_ADMITTED],
  // Groups still count.
  ['a wildcard group segment with a valid epoch', cognito(['team-a']), `/live/*/t${N}/x`, EPOCH_NOW, /wildcard/],
  ['a wildcard group segment with a valid epoch and nothing after', cognito(['team-a']), `/live/*/t${N}`, EPOCH_NOW, /wildcard/],
  ['a prefix-wildcard group segment with a valid epoch', cognito(['team-a']), `/live/team*/t${N}`, EPOCH_NOW, /wildcard/],
  ['a foreign group\'s segment with a valid epoch', cognito(['team-a']), `/live/team-b/t${N}/chat`, EPOCH_NOW, /in no group whose segment is team-b/],
  ['a foreign group\'s segment with a valid epoch, Lambda', lambdaGroups(['team-a']), `/live/team-b/t${N}`, EPOCH_NOW, /in no group whose segment is team-b/],
  ['an API key caller on a valid epoch', null, `${at(N)}/chat`, EPOCH_NOW, /no caller identity/],
  ['the publisher subscribing to a valid epoch', iam, `${at(N)}/chat`, EPOCH_NOW, /AWS_IAM does not subscribe/],
];
const epochPublishCorpus = [
  ['the publisher on the current epoch', iam, `${at(N)}/chat`, EPOCH_NOW, true],
  ['the publisher on the current epoch without a topic', iam, at(N), EPOCH_NOW, true],
  ['the publisher on the previous epoch (a clock slightly behind)', iam, `${at(N - 1)}/chat`, EPOCH_NOW, true],
  ['the publisher on the next epoch (a clock slightly ahead)', iam, `${at(N + 1)}/chat`, EPOCH_NOW, true],
  ['a publish to a far epoch (N+2)', iam, `${at(N + 2)}/chat`, EPOCH_NOW, NOT_ADMITTED],
  ['a publish to a far epoch (N+10^6)', iam, `${at(N + 1000000)}/chat`, EPOCH_NOW, NOT_ADMITTED],
  ['a publish to a past epoch (N-2)', iam, `${at(N - 2)}/chat`, EPOCH_NOW, NOT_ADMITTED],
  ['a publish with no epoch', iam, '/live/team-a/chat', EPOCH_NOW, NO_EPOCH],
  ['a publish with no epoch and no topic', iam, '/live/team-a', EPOCH_NOW, NO_EPOCH],
  ['a publish with a zero-padded epoch', iam, `/live/team-a/t0${N}/chat`, EPOCH_NOW, NO_EPOCH],
  ['a publish with the epoch in another position', iam, `/live/team-a/chat/t${N}`, EPOCH_NOW, NO_EPOCH],
  ['a publish to every topic of an epoch', iam, `${at(N)}/*`, EPOCH_NOW, /publish channels hold no wildcard/],
  ['a Cognito user publishing to the current epoch', cognito(['team-a']), `${at(N)}/chat`, EPOCH_NOW, /not an IAM principal/],
];

module.exports = {
  ISS, OIDC_ISS, PUBLISHER, cognito, cognitoWithout, lambda, lambdaGroups, oidc, iamCaller, iam, corpus, events, publishCorpus, modesCorpus, badLambdaGroupTexts,
  EPOCH_P, EPOCH_NOW, EPOCH_N, EPOCH_START, epochCorpus, epochPublishCorpus,
};
