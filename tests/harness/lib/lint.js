'use strict';
// Lints rendered Events handler code with @aws-appsync/eslint-plugin's `recommended` rules: the APPSYNC_JS
// restrictions (no try/catch/throw, no classic for/while, no ++, no regex literals, no recursion, only the
// runtime's built-in methods, functions passed only to Array callbacks, ...). The type-aware rules need a
// TypeScript program, so the code is written into a scratch project with a tsconfig that allows JS.
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

async function lintHandler(code) {
  const { ESLint } = require('eslint');
  const appsync = require('@aws-appsync/eslint-plugin');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'groupcast-lint-'));
  try {
    fs.writeFileSync(path.join(dir, 'handler.js'), code);
    fs.writeFileSync(
      path.join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: { allowJs: true, checkJs: false, noEmit: true, target: 'es2021', module: 'esnext', moduleResolution: 'bundler', lib: ['es2022'], types: [] },
        include: ['handler.js'],
      }),
    );
    const rec = appsync.configs.recommended;
    const eslint = new ESLint({
      cwd: dir,
      overrideConfigFile: true,
      overrideConfig: [
        {
          files: ['**/*.js'],
          ...rec,
          languageOptions: { ...rec.languageOptions, parserOptions: { project: path.join(dir, 'tsconfig.json'), tsconfigRootDir: dir, sourceType: 'module' } },
        },
      ],
    });
    const [result] = await eslint.lintFiles([path.join(dir, 'handler.js')]);
    return result.messages.map((m) => `${m.line}:${m.column} ${m.ruleId || 'parse'}: ${m.message}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

module.exports = { lintHandler };
