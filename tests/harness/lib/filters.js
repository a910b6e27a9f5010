'use strict';
// AppSync GraphQL enhanced subscription filters: the limits a filter must respect and the semantics AppSync
// applies to each published message (aws-protocols.md §8, from the enhanced-filtering guide):
// entries in `filters` are AND'ed, entries of `filterGroup` are OR'ed; comparisons are case sensitive.

const LIMITS = {
  filterGroupMaxFilters: 10, // OR'ed entries; `in` expands into entries that count too
  filterMaxConditions: 5, // unique fieldNames per entry
  containsAnyMaxValues: 20,
  inMaxValues: 5,
  valueMaxChars: 256,
  nestedMaxLevels: 5,
};

const OPERATORS = new Set(['eq', 'ne', 'le', 'lt', 'ge', 'gt', 'contains', 'notContains', 'beginsWith', 'in', 'notIn', 'between', 'containsAny']);

/// Every way `filter` breaks AppSync's rules, as sentences (empty when it is valid).
function limitViolations(filter) {
  const v = [];
  if (filter === null || typeof filter !== 'object' || !Array.isArray(filter.filterGroup)) {
    return ['filter has no filterGroup list'];
  }
  const keys = Object.keys(filter).filter((k) => k !== 'filterGroup');
  if (keys.length) v.push(`filter has unknown keys ${keys.join(', ')}`);
  const fg = filter.filterGroup;
  if (fg.length === 0) v.push('filterGroup is empty');
  let expanded = 0;
  fg.forEach((entry, i) => {
    const at = `filterGroup[${i}]`;
    if (!entry || !Array.isArray(entry.filters) || entry.filters.length === 0) {
      v.push(`${at} has no filters`);
      return;
    }
    const names = new Set();
    let product = 1;
    for (const [j, c] of entry.filters.entries()) {
      const cat = `${at}.filters[${j}]`;
      if (!c || typeof c.fieldName !== 'string' || c.fieldName === '') v.push(`${cat} has no fieldName`);
      else {
        names.add(c.fieldName);
        if (c.fieldName.split('.').length > LIMITS.nestedMaxLevels) v.push(`${cat}.fieldName nests more than ${LIMITS.nestedMaxLevels} levels`);
      }
      if (!OPERATORS.has(c && c.operator)) v.push(`${cat}.operator ${JSON.stringify(c && c.operator)} is not an AppSync operator`);
      const values = Array.isArray(c && c.value) ? c.value : [c && c.value];
      if (c && c.operator === 'containsAny') {
        if (!Array.isArray(c.value) || c.value.length === 0) v.push(`${cat}: containsAny needs a non-empty list`);
        else if (c.value.length > LIMITS.containsAnyMaxValues) v.push(`${cat}: containsAny has ${c.value.length} values, AppSync allows ${LIMITS.containsAnyMaxValues}`);
      }
      if (c && (c.operator === 'in' || c.operator === 'notIn')) {
        if (!Array.isArray(c.value) || c.value.length > LIMITS.inMaxValues) v.push(`${cat}: ${c.operator} allows ${LIMITS.inMaxValues} values`);
        if (c.operator === 'in' && Array.isArray(c.value)) product *= Math.max(1, c.value.length);
      }
      if (c && c.operator === 'between' && (!Array.isArray(c.value) || c.value.length !== 2)) v.push(`${cat}: between needs [low, high]`);
      for (const x of values) {
        if (typeof x === 'string' && x.length > LIMITS.valueMaxChars) v.push(`${cat}: a value has ${x.length} characters, AppSync allows ${LIMITS.valueMaxChars}`);
        if (x === undefined) v.push(`${cat} has no value`);
      }
    }
    if (names.size !== entry.filters.length) v.push(`${at} repeats a fieldName`);
    if (names.size > LIMITS.filterMaxConditions) v.push(`${at} has ${names.size} conditions, AppSync allows ${LIMITS.filterMaxConditions}`);
    expanded += product;
  });
  if (expanded > LIMITS.filterGroupMaxFilters) v.push(`filterGroup has ${expanded} filters (in expanded), AppSync allows ${LIMITS.filterGroupMaxFilters}`);
  return v;
}

function fieldValue(message, fieldName) {
  let cur = message;
  for (const k of fieldName.split('.')) {
    if (cur === null || typeof cur !== 'object' || !Object.hasOwn(cur, k)) return undefined;
    cur = cur[k];
  }
  return cur;
}

const scalar = (x) => typeof x === 'string' || typeof x === 'number' || typeof x === 'boolean';

function condition(c, message) {
  const f = fieldValue(message, c.fieldName);
  const val = c.value;
  if (f === undefined || f === null) {
    // A missing field matches only the negative operators.
    return c.operator === 'ne' || c.operator === 'notContains' || c.operator === 'notIn';
  }
  switch (c.operator) {
    case 'eq': return scalar(f) && f === val;
    case 'ne': return !(scalar(f) && f === val);
    case 'lt': return scalar(f) && typeof f === typeof val && f < val;
    case 'le': return scalar(f) && typeof f === typeof val && f <= val;
    case 'gt': return scalar(f) && typeof f === typeof val && f > val;
    case 'ge': return scalar(f) && typeof f === typeof val && f >= val;
    case 'contains': return Array.isArray(f) ? f.includes(val) : typeof f === 'string' && typeof val === 'string' && f.includes(val);
    case 'notContains': return Array.isArray(f) ? !f.includes(val) : !(typeof f === 'string' && typeof val === 'string' && f.includes(val));
    case 'beginsWith': return typeof f === 'string' && typeof val === 'string' && f.startsWith(val);
    case 'in': return Array.isArray(val) && scalar(f) && val.includes(f);
    case 'notIn': return !(Array.isArray(val) && scalar(f) && val.includes(f));
    // Typed, as lt/le/gt/ge: JavaScript's >= would compare '5' with 1 (groupcast-vtl's filter.rs agrees).
    case 'between': return Array.isArray(val) && val.length === 2 && scalar(f) && typeof f === typeof val[0] && typeof f === typeof val[1] && f >= val[0] && f <= val[1];
    case 'containsAny': return Array.isArray(f) && Array.isArray(val) && f.some((x) => val.includes(x));
    default: return false;
  }
}

/// Whether AppSync delivers `message` (the mutation's returned selection set) to a subscription with `filter`.
function matches(filter, message) {
  return filter.filterGroup.some((entry) => entry.filters.every((c) => condition(c, message)));
}

/// `$util.transform.toSubscriptionFilter(map, ignoreFields, rules)`: `{field: {op: value}}`, several operators on
/// one field OR'ed, `and`/`or` lists nesting; the result is an OR of AND'ed condition lists.
function toSubscriptionFilter(m, ignoreFields = [], _rules = {}) {
  const ignore = new Set(ignoreFields || []);
  const product = (a, b) => a.flatMap((x) => b.map((y) => [...x, ...y]));
  const dnf = (obj) => {
    let acc = [[]];
    for (const [k, v] of Object.entries(obj)) {
      if (ignore.has(k)) continue;
      if (k === 'or') acc = product(acc, v.flatMap(dnf));
      else if (k === 'and') acc = v.reduce((a, sub) => product(a, dnf(sub)), acc);
      else acc = product(acc, Object.entries(v).map(([op, value]) => [{ fieldName: k, operator: op, value }]));
    }
    return acc;
  };
  return { filterGroup: dnf(m).map((filters) => ({ filters })) };
}

module.exports = { LIMITS, limitViolations, matches, toSubscriptionFilter };
