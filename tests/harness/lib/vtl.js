'use strict';
// Evaluates the rendered VTL with amplify-appsync-simulator's VelocityTemplate (the AppSync-like engine and
// $util), adding what the simulator lacks (local-peers.md §2): the `$extensions` of subscriptions, captured where
// AppSync documents them (https://docs.aws.amazon.com/appsync/latest/devguide/extensions.html):
// `setSubscriptionFilter` and `setSubscriptionInvalidationFilter` in response templates of subscription
// resolvers only, `invalidateSubscriptions` in response templates of mutation resolvers only (anywhere else
// each is recorded as misuse); `$util.transform.toSubscriptionFilter`; and identities for Lambda authorization
// (`$ctx.identity.resolverContext`).
// aws-sdk v2, a dependency of the simulator, prints a notice on load; it says nothing about our templates.
process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE = '1';
const { VelocityTemplate, AmplifyAppSyncSimulatorAuthenticationType: A } = require('amplify-appsync-simulator');
const { map } = require('amplify-appsync-simulator/lib/velocity/value-mapper/mapper');
const { JavaString } = require('amplify-appsync-simulator/lib/velocity/value-mapper/string');
const { parse } = require('graphql');
const { toSubscriptionFilter, matches } = require('./filters');

const plain = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));

// The simulator only knows modes it can authenticate; AWS_LAMBDA is ours.
const LAMBDA = 'AWS_LAMBDA';

class CapturingTemplate extends VelocityTemplate {
  /// `where`: 'subscription-response', 'mutation-response' or 'request' (which extensions AppSync allows).
  constructor(template, captured, where) {
    super(template, { appSyncConfig: { defaultAuthenticationType: { authenticationType: A.AWS_IAM } } });
    this.captured = captured;
    this.where = where;
  }

  buildRenderContext(ctxValues, requestContext, info) {
    const rc = super.buildRenderContext(ctxValues, requestContext, info);
    if (requestContext.requestAuthorizationMode === LAMBDA) {
      rc.context.identity = map({ resolverContext: requestContext.resolverContext });
      rc.util.authType = () => 'Lambda Authorization';
    }
    if (requestContext.requestAuthorizationMode === A.API_KEY) {
      rc.context.identity = null;
    }
    const captured = this.captured;
    const where = this.where;
    const only = (allowed, name, into) => (arg) => {
      if (where !== allowed) {
        captured.misuse.push(`${name} called outside a ${allowed.replace('-', ' ')} template`);
        return '';
      }
      // Void in AppSync: renders nothing.
      into.push(plain(arg));
      return '';
    };
    rc.extensions = {
      setSubscriptionFilter: only('subscription-response', 'setSubscriptionFilter', captured.filters),
      setSubscriptionInvalidationFilter: only('subscription-response', 'setSubscriptionInvalidationFilter', captured.invalidationFilters),
      invalidateSubscriptions: only('mutation-response', 'invalidateSubscriptions', captured.invalidations),
    };
    // The simulator's isNullOrEmpty says a plain (unmapped) string literal is empty iff it is non-empty, and
    // its isNullOrBlank ignores whitespace; AppSync documents both for strings: null or "" (Empty), null or
    // whitespace only (Blank).
    const simulatorEmpty = rc.util.isNullOrEmpty.bind(rc.util);
    rc.util.isNullOrEmpty = (v) => (typeof v === 'string' || v instanceof JavaString ? v.toString() === '' : simulatorEmpty(v));
    rc.util.isNullOrBlank = (v) => (typeof v === 'string' || v instanceof JavaString ? v.toString().trim() === '' : simulatorEmpty(v));
    rc.util.transform = { ...rc.util.transform, toSubscriptionFilter: (m, ignore, rules) => map(toSubscriptionFilter(plain(m), plain(ignore), plain(rules))) };
    return rc;
  }
}

const SUBSCRIBE_DOC = parse(
  'subscription S($prefix: String, $onlyGroups: [String!]) { subscribe(prefix: $prefix, onlyGroups: $onlyGroups) { topic data groups uuid } }',
);
const REVOKE_DOC = parse(
  'mutation R($userId: String!, $groups: [String!]!) { revoke(userId: $userId, groups: $groups) { userId groups } }',
);
const PUBLISH_DOC = parse(
  'mutation P($topic: String!, $data: AWSJSON!, $groups: [String!]!, $uuid: String) { publish(topic: $topic, data: $data, groups: $groups, uuid: $uuid) { topic data groups uuid } }',
);

function infoFor(doc, parentType, variables) {
  const op = doc.definitions[0];
  const field = op.selectionSet.selections[0];
  return {
    fieldName: field.name.value,
    parentType,
    path: { key: field.name.value, prev: undefined },
    fieldNodes: [field],
    operation: op,
    fragments: {},
    variableValues: variables,
  };
}

/// A caller as the simulator's request context: {mode, claims} for Cognito/OIDC, {mode, resolverContext} for
/// Lambda, {mode, iam} for IAM, {mode: 'API_KEY'}.
function requestContext(caller) {
  const base = { requestAuthorizationMode: caller.mode, sourceIp: '127.0.0.1', headers: {} };
  switch (caller.mode) {
    case A.AMAZON_COGNITO_USER_POOLS:
    case A.OPENID_CONNECT:
      return { ...base, jwt: caller.claims };
    case LAMBDA:
      return { ...base, resolverContext: caller.resolverContext };
    case A.AWS_IAM:
      return { ...base, iamToken: caller.iam || { username: 'AROAEXAMPLE:publisher', userArn: 'arn:aws:sts::123456789012:assumed-role/harness-publisher/publisher' } };
    default:
      return base;
  }
}

function outcome(r, captured) {
  if (r.hadException || (r.errors && r.errors.length)) {
    const e = r.errors[r.errors.length - 1] || {};
    const message = (e.extensions && e.extensions.message) || e.message || 'rejected';
    return { rejected: true, message, errorType: e.errorType || (e.extensions && e.extensions.errorType), captured };
  }
  return { rejected: false, result: r.result, captured };
}

function renderOne(content, name, ctxValues, caller, info, where) {
  const captured = { filters: [], invalidationFilters: [], invalidations: [], misuse: [] };
  const t = new CapturingTemplate({ path: name, content }, captured, where);
  let r;
  try {
    r = t.render(ctxValues, requestContext(caller), info);
  } catch (e) {
    // The engine throws for output that is not JSON (e.g. an unresolved reference): AppSync fails the request.
    return { rejected: true, message: `template output is not JSON: ${e.message}`, errorType: 'MappingTemplate', captured };
  }
  return outcome(r, captured);
}

/// Runs a subscription as AppSync does at subscribe time: request template, NONE data source (payload becomes
/// the result), response template. Returns {rejected, message} or {rejected:false, filter}.
function subscribe(files, caller, args) {
  const variables = { prefix: args.prefix, onlyGroups: args.onlyGroups };
  const info = infoFor(SUBSCRIBE_DOC, 'Subscription', variables);
  const req = renderOne(files['graphql/Subscription.subscribe.request.vtl'], 'subscribe.request', { arguments: args, source: null }, caller, info, 'request');
  if (req.rejected) return { ...req, stage: 'request' };
  if (req.captured.misuse.length) return { rejected: false, misuse: req.captured.misuse, filter: undefined };
  if (!req.result || req.result.version !== '2018-05-29') {
    return { rejected: true, message: `request template did not emit a NONE request: ${JSON.stringify(req.result)}` };
  }
  const res = renderOne(
    files['graphql/Subscription.subscribe.response.vtl'],
    'subscribe.response',
    { arguments: args, source: null, result: req.result.payload },
    caller,
    info,
    'subscription-response',
  );
  if (res.rejected) return { ...res, stage: 'response' };
  const f = res.captured.filters;
  return {
    rejected: false,
    filterCalls: f.length,
    filter: f.length ? f[f.length - 1] : undefined,
    invalidationFilters: res.captured.invalidationFilters,
    invalidationFilter: res.captured.invalidationFilters[res.captured.invalidationFilters.length - 1],
    misuse: res.captured.misuse,
    result: res.result,
  };
}

/// Runs the publish mutation's templates; returns {rejected, message} or {rejected:false, message: the returned Message}.
function publish(files, caller, args) {
  const info = infoFor(PUBLISH_DOC, 'Mutation', args);
  const req = renderOne(files['graphql/Mutation.publish.request.vtl'], 'publish.request', { arguments: args, source: null }, caller, info, 'request');
  if (req.rejected) return req;
  if (!req.result || req.result.version !== '2018-05-29') {
    return { rejected: true, message: `publish request is not a NONE request: ${JSON.stringify(req.result)}` };
  }
  const res = renderOne(files['graphql/Mutation.publish.response.vtl'], 'publish.response', { arguments: args, source: null, result: req.result.payload }, caller, info, 'mutation-response');
  if (res.rejected) return res;
  return {
    rejected: false,
    message: res.result,
    invalidations: res.captured.invalidations,
    misuse: [...req.captured.misuse, ...res.captured.misuse],
  };
}

/// Runs the revoke mutation's templates; returns {rejected, message} or {rejected:false, result, invalidations}:
/// every `$extensions.invalidateSubscriptions` argument, in order.
function revoke(files, caller, args) {
  const info = infoFor(REVOKE_DOC, 'Mutation', args);
  const req = renderOne(files['graphql/Mutation.revoke.request.vtl'], 'revoke.request', { arguments: args, source: null }, caller, info, 'request');
  if (req.rejected) return req;
  if (!req.result || req.result.version !== '2018-05-29') {
    return { rejected: true, message: `revoke request is not a NONE request: ${JSON.stringify(req.result)}` };
  }
  const res = renderOne(files['graphql/Mutation.revoke.response.vtl'], 'revoke.response', { arguments: args, source: null, result: req.result.payload }, caller, info, 'mutation-response');
  if (res.rejected) return res;
  return {
    rejected: false,
    result: res.result,
    invalidations: res.captured.invalidations,
    misuse: [...req.captured.misuse, ...res.captured.misuse],
  };
}

/// Whether AppSync closes a subscription on an invalidateSubscriptions call: the call names its field, and its
/// payload matches the subscription's invalidation filter (the same syntax and semantics as enhanced filters:
/// https://docs.aws.amazon.com/appsync/latest/devguide/aws-appsync-real-time-invalidation.html). A subscription
/// without an invalidation filter is never closed.
function invalidates(subscription, call, field = 'subscribe') {
  const f = subscription.invalidationFilter;
  if (!f || !call || call.subscriptionField !== field) return false;
  return matches(f, call.payload || {});
}

const MODES = { COGNITO: A.AMAZON_COGNITO_USER_POOLS, OIDC: A.OPENID_CONNECT, IAM: A.AWS_IAM, API_KEY: A.API_KEY, LAMBDA };

module.exports = { subscribe, publish, revoke, invalidates, MODES };
