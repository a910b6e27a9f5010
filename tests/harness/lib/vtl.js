'use strict';
// Evaluates the rendered VTL with amplify-appsync-simulator's VelocityTemplate (the AppSync-like engine and
// $util), adding what the simulator lacks (local-peers.md §2): `$extensions.setSubscriptionFilter` (captured,
// as AppSync documents it: response templates of subscription resolvers only), `$util.transform.toSubscriptionFilter`,
// and identities for Lambda authorization (`$ctx.identity.resolverContext`).
// aws-sdk v2, a dependency of the simulator, prints a notice on load; it says nothing about our templates.
process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE = '1';
const { VelocityTemplate, AmplifyAppSyncSimulatorAuthenticationType: A } = require('amplify-appsync-simulator');
const { map } = require('amplify-appsync-simulator/lib/velocity/value-mapper/mapper');
const { JavaString } = require('amplify-appsync-simulator/lib/velocity/value-mapper/string');
const { parse } = require('graphql');
const { toSubscriptionFilter } = require('./filters');

const plain = (v) => (v === undefined ? undefined : JSON.parse(JSON.stringify(v)));

// The simulator only knows modes it can authenticate; AWS_LAMBDA is ours.
const LAMBDA = 'AWS_LAMBDA';

class CapturingTemplate extends VelocityTemplate {
  constructor(template, captured, { allowExtensions }) {
    super(template, { appSyncConfig: { defaultAuthenticationType: { authenticationType: A.AWS_IAM } } });
    this.captured = captured;
    this.allowExtensions = allowExtensions;
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
    const allow = this.allowExtensions;
    const misuse = (name) => {
      captured.misuse.push(`${name} called outside a subscription response template`);
      return '';
    };
    rc.extensions = {
      // Void in AppSync: renders nothing.
      setSubscriptionFilter: (f) => (allow ? (captured.filters.push(plain(f)), '') : misuse('setSubscriptionFilter')),
      setSubscriptionInvalidationFilter: (f) =>
        allow ? (captured.invalidationFilters.push(plain(f)), '') : misuse('setSubscriptionInvalidationFilter'),
      invalidateSubscriptions: () => misuse('invalidateSubscriptions'),
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

function renderOne(content, name, ctxValues, caller, info, allowExtensions) {
  const captured = { filters: [], invalidationFilters: [], misuse: [] };
  const t = new CapturingTemplate({ path: name, content }, captured, { allowExtensions });
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
  const req = renderOne(files['graphql/Subscription.subscribe.request.vtl'], 'subscribe.request', { arguments: args, source: null }, caller, info, false);
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
    true,
  );
  if (res.rejected) return { ...res, stage: 'response' };
  const f = res.captured.filters;
  return {
    rejected: false,
    filterCalls: f.length,
    filter: f.length ? f[f.length - 1] : undefined,
    invalidationFilters: res.captured.invalidationFilters,
    result: res.result,
  };
}

/// Runs the publish mutation's templates; returns {rejected, message} or {rejected:false, message: the returned Message}.
function publish(files, caller, args) {
  const info = infoFor(PUBLISH_DOC, 'Mutation', args);
  const req = renderOne(files['graphql/Mutation.publish.request.vtl'], 'publish.request', { arguments: args, source: null }, caller, info, false);
  if (req.rejected) return req;
  if (!req.result || req.result.version !== '2018-05-29') {
    return { rejected: true, message: `publish request is not a NONE request: ${JSON.stringify(req.result)}` };
  }
  const res = renderOne(files['graphql/Mutation.publish.response.vtl'], 'publish.response', { arguments: args, source: null, result: req.result.payload }, caller, info, false);
  if (res.rejected) return res;
  return { rejected: false, message: res.result, misuse: [...req.captured.misuse, ...res.captured.misuse] };
}

const MODES = { COGNITO: A.AMAZON_COGNITO_USER_POOLS, OIDC: A.OPENID_CONNECT, IAM: A.AWS_IAM, API_KEY: A.API_KEY, LAMBDA };

module.exports = { subscribe, publish, MODES };
