'use strict';
// The APPSYNC_JS allow-list check: parses rendered Events handler code (espree, the parser eslint ships) and
// refuses every syntax, operator, global and method that AWS does not list as supported. The list is data,
// with its sources: ../appsync-js-supported.json. @aws-appsync/eslint-plugin (lib/lint.js) is a deny-list and
// lets unlisted methods such as String.prototype.codePointAt or Array.isArray through; this check does not.
//
// The check is static, so it is conservative where it cannot know a value's type: a method called on a value
// must be a listed String or Array method, whatever the value is. Data properties (ctx.identity.userArn,
// parts[1]) are free to read. Function values may only be arrow functions passed to the listed array methods,
// and no function may reach itself through calls (no recursion).
const espree = require('espree');
const SUPPORTED = require('../appsync-js-supported.json');

const ALLOWED_NODES = new Set(SUPPORTED.syntax.allowed);
const NAMESPACES = SUPPORTED.globals.namespaces;
const GLOBAL_VALUES = new Set(SUPPORTED.globals.values);
const METHODS = new Set([...SUPPORTED.methods.string, ...SUPPORTED.methods.array]);
const NO_ARGUMENTS = new Set(SUPPORTED.methods.noArguments);
const CALLBACK_METHODS = new Set(SUPPORTED.callbacks.methods);
const FORBIDDEN_PROPERTIES = new Set(SUPPORTED.properties.forbidden);
const OPS = {
  BinaryExpression: new Set(SUPPORTED.operators.binary),
  LogicalExpression: new Set(SUPPORTED.operators.logical),
  UnaryExpression: new Set(SUPPORTED.operators.unary),
  AssignmentExpression: new Set(SUPPORTED.operators.assignment),
};
// What the most common refusals mean, so a message names the construct and not only its ESTree type.
const NAMES = {
  UpdateExpression: 'the ++ / -- operators',
  ForStatement: 'for(;;) loops',
  WhileStatement: 'while loops',
  DoWhileStatement: 'do-while loops',
  TryStatement: 'try/catch/finally',
  ThrowStatement: 'throw',
  ContinueStatement: 'continue',
  LabeledStatement: 'labeled statements',
  NewExpression: 'new (constructors)',
  ConditionalExpression: 'the conditional operator ?:',
  SequenceExpression: 'the comma operator',
  FunctionExpression: 'function expressions',
  ClassDeclaration: 'classes',
  ClassExpression: 'classes',
  ThisExpression: 'this',
  AwaitExpression: 'await',
  YieldExpression: 'yield',
  ObjectPattern: 'destructuring',
  ArrayPattern: 'destructuring',
  AssignmentPattern: 'default parameters',
  TaggedTemplateExpression: 'tagged templates',
};

function children(node) {
  const out = [];
  for (const [key, value] of Object.entries(node)) {
    if (key === 'parent' || key === 'loc' || key === 'range') continue;
    if (Array.isArray(value)) {
      for (const v of value) if (v && typeof v.type === 'string') out.push([key, v]);
    } else if (value && typeof value.type === 'string') {
      out.push([key, value]);
    }
  }
  return out;
}

function walk(node, visit, parent = null, key = null) {
  visit(node, parent, key);
  for (const [k, child] of children(node)) walk(child, visit, node, k);
}

/// Every use of something APPSYNC_JS does not list, as "line:column what", in source order. [] when none.
function checkAppsyncJs(code) {
  let ast;
  try {
    ast = espree.parse(code, { ecmaVersion: 'latest', sourceType: 'module', loc: true });
  } catch (e) {
    return [`${e.lineNumber}:${e.column} does not parse: ${e.message}`];
  }
  const problems = [];
  const at = (node, what) => problems.push(`${node.loc.start.line}:${node.loc.start.column + 1} ${what}`);

  // Names the code declares (any scope), the function declarations among them, and the import bindings.
  const declared = new Set();
  const functions = new Map();
  const imported = new Set();
  walk(ast, (node, parent) => {
    if (node.type === 'FunctionDeclaration') {
      declared.add(node.id.name);
      functions.set(node.id.name, node);
    }
    if (node.type === 'FunctionDeclaration' || node.type === 'ArrowFunctionExpression') {
      for (const p of node.params) {
        if (p.type === 'Identifier') declared.add(p.name);
        else if (p.type === 'RestElement' && p.argument.type === 'Identifier') declared.add(p.argument.name);
      }
    }
    if (node.type === 'VariableDeclarator' && node.id.type === 'Identifier') declared.add(node.id.name);
    if (node.type === 'ImportSpecifier') {
      declared.add(node.local.name);
      imported.add(node.local.name);
    }
    void parent;
  });
  const namespaceOf = (node) => {
    if (node.type === 'Identifier') {
      return Object.hasOwn(NAMESPACES, node.name) && (!declared.has(node.name) || imported.has(node.name)) ? node.name : null;
    }
    // A listed namespace inside another (`util.time`): its name with the dot.
    if (node.type === 'MemberExpression' && !node.computed) {
      const outer = namespaceOf(node.object);
      const inner = outer === null ? null : `${outer}.${node.property.name}`;
      return inner !== null && Object.hasOwn(NAMESPACES, inner) ? inner : null;
    }
    return null;
  };

  walk(ast, (node, parent, key) => {
    if (!ALLOWED_NODES.has(node.type)) {
      at(node, `${NAMES[node.type] || node.type} is not supported`);
      return;
    }
    switch (node.type) {
      case 'Literal':
        if (node.regex) at(node, 'regular expression literals are not supported');
        if (node.bigint !== undefined) at(node, 'BigInt literals are not supported');
        break;
      case 'BinaryExpression':
      case 'LogicalExpression':
      case 'UnaryExpression':
      case 'AssignmentExpression':
        if (!OPS[node.type].has(node.operator)) at(node, `the ${node.operator} operator is not supported`);
        break;
      case 'BreakStatement':
        if (node.label) at(node, 'labeled break is not supported');
        break;
      case 'VariableDeclarator':
        if (node.id.type !== 'Identifier') at(node, 'destructuring is not supported');
        break;
      case 'FunctionDeclaration':
      case 'ArrowFunctionExpression':
        if (node.async || node.generator) at(node, 'async functions and generators are not supported');
        for (const p of node.params) {
          const ok = p.type === 'Identifier' || (p.type === 'RestElement' && p.argument.type === 'Identifier');
          if (!ok) at(p, 'only plain and rest parameters are supported');
        }
        if (node.type === 'ArrowFunctionExpression') {
          const callee = parent && parent.type === 'CallExpression' && key === 'arguments' ? parent.callee : null;
          const method = callee && callee.type === 'MemberExpression' && !callee.computed ? callee.property.name : null;
          if (!CALLBACK_METHODS.has(method)) at(node, 'an arrow function is supported only as the callback of a listed array method');
        }
        break;
      case 'Property':
        if (node.kind !== 'init' || node.method || node.computed) at(node, 'only plain `key: value` object properties are supported');
        break;
      case 'ImportDeclaration': {
        const allowed = SUPPORTED.module.imports[node.source.value];
        for (const s of node.specifiers) {
          if (!allowed || s.type !== 'ImportSpecifier' || !allowed.includes(s.imported.name)) at(s, `import of ${s.local.name} from ${node.source.value} is not supported`);
        }
        break;
      }
      case 'ExportNamedDeclaration': {
        const d = node.declaration;
        if (!d || d.type !== 'FunctionDeclaration' || !SUPPORTED.module.exports.includes(d.id.name) || node.specifiers.length) {
          at(node, `a handler exports only the functions ${SUPPORTED.module.exports.join(' and ')}`);
        }
        break;
      }
      case 'MemberExpression': {
        if (node.computed) break;
        const name = node.property.name;
        if (FORBIDDEN_PROPERTIES.has(name)) at(node.property, `.${name} is not supported`);
        const ns = namespaceOf(node.object);
        if (ns !== null && !NAMESPACES[ns].includes(name)) at(node.property, `${ns}.${name} is not supported`);
        if (node.object.type === 'Identifier' && !declared.has(node.object.name) && ns === null && !GLOBAL_VALUES.has(node.object.name)) {
          at(node.property, `${node.object.name}.${name} is not supported (${node.object.name} is not a listed global)`);
        }
        break;
      }
      case 'CallExpression': {
        if (node.optional) at(node, 'optional calls ?.() are not supported');
        const c = node.callee;
        let method = null;
        if (c.type === 'Identifier') {
          if (declared.has(c.name) && !functions.has(c.name)) at(c, `${c.name} is not a function declaration: only declared functions are called`);
        } else if (c.type === 'MemberExpression' && !c.computed) {
          method = c.property.name;
          const unlistedGlobal = c.object.type === 'Identifier' && !declared.has(c.object.name) && namespaceOf(c.object) === null;
          if (namespaceOf(c.object) === null && !unlistedGlobal && !METHODS.has(method)) at(c.property, `the method .${method}() is not on the supported String or Array lists`);
          if (NO_ARGUMENTS.has(method) && node.arguments.length) at(node, `.${method}() takes no arguments in APPSYNC_JS`);
          const outer = namespaceOf(c.object);
          if (outer !== null && Object.hasOwn(NAMESPACES, `${outer}.${method}`)) at(c.property, `${outer}.${method} is a namespace, not a function`);
        } else {
          at(c, 'only calls of declared functions and of listed methods are supported');
        }
        for (const a of node.arguments) {
          if (a.type === 'Identifier' && functions.has(a.name)) at(a, `passing the function ${a.name} as an argument is not supported`);
        }
        break;
      }
      case 'Identifier': {
        const reference = !(
          (parent.type === 'MemberExpression' && key === 'property' && !parent.computed) ||
          (parent.type === 'Property' && key === 'key' && !parent.computed) ||
          parent.type === 'ImportSpecifier'
        );
        if (!reference) break;
        if (!declared.has(node.name) && !GLOBAL_VALUES.has(node.name) && !Object.hasOwn(NAMESPACES, node.name)) {
          if (!(parent.type === 'MemberExpression' && key === 'object')) at(node, `the global ${node.name} is not supported`);
        }
        // A declared function is only called (or declared, or exported); never stored or passed around.
        const declaration = parent.type === 'FunctionDeclaration' && key === 'id';
        if (functions.has(node.name) && !declaration && !(parent.type === 'CallExpression' && key === 'callee') && !(parent.type === 'CallExpression' && key === 'arguments')) {
          at(node, `the function ${node.name} is used as a value: only calling it is supported`);
        }
        break;
      }
      default:
        break;
    }
  });

  // Recursion: no declared function may reach itself through calls.
  const calls = new Map();
  for (const [name, fn] of functions) {
    const out = new Set();
    walk(fn.body, (node) => {
      if (node.type === 'CallExpression' && node.callee.type === 'Identifier' && functions.has(node.callee.name)) out.add(node.callee.name);
    });
    calls.set(name, out);
  }
  const reported = new Set();
  for (const start of functions.keys()) {
    const stack = [[start, [start]]];
    const seen = new Set();
    while (stack.length) {
      const [fn, chain] = stack.pop();
      for (const next of calls.get(fn)) {
        if (next === start) {
          const cycle = [...chain, start].join(' -> ');
          const key = [...chain].sort().join(',');
          if (!reported.has(key)) {
            reported.add(key);
            at(functions.get(start), `recursive calls are not supported: ${cycle}`);
          }
        } else if (!seen.has(next)) {
          seen.add(next);
          stack.push([next, [...chain, next]]);
        }
      }
    }
  }
  return problems.sort((a, b) => {
    const [la, ca] = a.split(' ')[0].split(':').map(Number);
    const [lb, cb] = b.split(' ')[0].split(':').map(Number);
    return la - lb || ca - cb;
  });
}

module.exports = { checkAppsyncJs, SUPPORTED };
