'use strict';
// Evaluates IAM and IoT policy documents the way AWS documents it: a request is allowed when some Allow
// statement matches its action and resource and no Deny statement does. Patterns use `*` (any run of
// characters, `/` included) and `?` (one character); every other character is literal, so MQTT's `+` and
// `#` are plain characters in a policy. Actions compare case-insensitively, resources case-sensitively.
// Policy variables `${...}` are substituted from the request; an unknown variable makes the statement not
// match (fail closed).

function globMatch(pattern, value, caseInsensitive = false) {
  const p = caseInsensitive ? pattern.toLowerCase() : pattern;
  const v = caseInsensitive ? value.toLowerCase() : value;
  // Iterative wildcard matching with backtracking on the last `*`.
  let i = 0;
  let j = 0;
  let star = -1;
  let mark = 0;
  while (j < v.length) {
    if (i < p.length && (p[i] === '?' || p[i] === v[j])) {
      i += 1;
      j += 1;
    } else if (i < p.length && p[i] === '*') {
      star = i;
      mark = j;
      i += 1;
    } else if (star !== -1) {
      i = star + 1;
      mark += 1;
      j = mark;
    } else {
      return false;
    }
  }
  while (i < p.length && p[i] === '*') i += 1;
  return i === p.length;
}

/// Substitutes `${name}` from vars; returns null when a variable is unknown.
function substitute(pattern, vars) {
  let unknown = false;
  const out = pattern.replace(/\$\{([^}]*)\}/g, (_, name) => {
    if (Object.hasOwn(vars, name)) return vars[name];
    unknown = true;
    return '';
  });
  return unknown ? null : out;
}

const list = (x) => (Array.isArray(x) ? x : x === undefined ? [] : [x]);

function statementMatches(st, action, resource, vars) {
  if (st.NotAction !== undefined || st.NotResource !== undefined || st.Condition !== undefined) {
    // groupcast's policies use none of these; treat them as matching everything so a Deny test notices.
    return true;
  }
  const actionOk = list(st.Action).some((a) => globMatch(a, action, true));
  const resourceOk = list(st.Resource).some((r) => {
    const p = substitute(r, vars);
    return p !== null && globMatch(p, resource);
  });
  return actionOk && resourceOk;
}

/// Whether `policies` (documents, parsed) allow `action` on `resource` for a caller with policy variables `vars`.
function allows(policies, action, resource, vars = {}) {
  let allowed = false;
  for (const doc of list(policies)) {
    for (const st of list(doc.Statement)) {
      if (!statementMatches(st, action, resource, vars)) continue;
      if (st.Effect === 'Deny') return false;
      if (st.Effect === 'Allow') allowed = true;
    }
  }
  return allowed;
}

/// Characters of a policy document without whitespace (IoT's 2048-character limit counts these).
const sizeWithoutWhitespace = (text) => text.replace(/\s/g, '').length;

module.exports = { allows, globMatch, substitute, sizeWithoutWhitespace };
