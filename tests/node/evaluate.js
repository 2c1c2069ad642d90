#!/usr/bin/env node
// Independent flagd evaluator for the flagramp test suite.
//
//   node tests/node/evaluate.js FLAGFILE FLAGKEY COUNT
//
// Loads FLAGFILE with the real flagd evaluator (@openfeature/flagd-core, pinned in
// package.json), evaluates the boolean flag FLAGKEY for the targeting keys
// "user-0" .. "user-(COUNT-1)" and prints one JSON object on stdout:
//
//   {"count":N,"on":[i, ...],"reasons":{"TARGETING_MATCH":n, ...}}
//
// "on" lists (in ascending order) the i whose evaluation returned true; "reasons" counts the
// resolution reasons (TARGETING_MATCH, STATIC, DEFAULT, DISABLED, ERROR, ...).
// Log lines from flagd-core (for example schema-validation or targeting problems) go to
// stderr, each distinct message once. Exit status: 0 on success, 2 on bad usage,
// 1 when the file cannot be read or parsed.
'use strict';

const fs = require('fs');

function usage(message) {
  if (message) {
    process.stderr.write(`evaluate.js: ${message}\n`);
  }
  process.stderr.write('usage: node evaluate.js FLAGFILE FLAGKEY COUNT\n');
  process.exit(2);
}

const args = process.argv.slice(2);
if (args.length !== 3) {
  usage(`expected 3 arguments, got ${args.length}`);
}
const [flagFile, flagKey, countText] = args;
if (!/^[0-9]+$/.test(countText)) {
  usage(`COUNT must be a non-negative integer, got ${JSON.stringify(countText)}`);
}
const count = Number(countText);
if (!Number.isSafeInteger(count)) {
  usage(`COUNT is too large: ${countText}`);
}

let FlagdCore;
try {
  ({ FlagdCore } = require('@openfeature/flagd-core'));
} catch (err) {
  process.stderr.write(
    `evaluate.js: cannot load @openfeature/flagd-core (run "npm ci" in ${__dirname}): ${err.message}\n`,
  );
  process.exit(1);
}

// flagd-core logs through this object. Report each distinct message once on stderr so that a
// misconfiguration is visible without flooding the output over thousands of evaluations.
// Schema-validation failures arrive as one huge pretty-printed JSON array of ajv errors: condense
// them to the distinct "path: message" pairs.
function condense(text) {
  const start = text.indexOf('[');
  if (start >= 0) {
    try {
      const errors = JSON.parse(text.slice(start));
      if (Array.isArray(errors)) {
        const pairs = [...new Set(errors.map((e) => `${e.instancePath || '/'}: ${e.message}`))];
        return `${text.slice(0, start)}${pairs.join('; ')}`;
      }
    } catch (_) {
      // not JSON: fall through
    }
  }
  return text.replace(/\s*\n\s*/g, ' ');
}
const seen = new Set();
function emit(level, parts) {
  const text = condense(
    parts
      .map((p) => (typeof p === 'string' ? p : p instanceof Error ? p.message : JSON.stringify(p)))
      .join(' '),
  );
  const line = `flagd-core ${level}: ${text}`;
  if (!seen.has(line)) {
    seen.add(line);
    process.stderr.write(`${line}\n`);
  }
}
const logger = {
  error: (...parts) => emit('error', parts),
  warn: (...parts) => emit('warn', parts),
  info: (...parts) => emit('info', parts),
  debug: (...parts) => emit('debug', parts),
};

let text;
try {
  text = fs.readFileSync(flagFile, 'utf8');
} catch (err) {
  process.stderr.write(`evaluate.js: cannot read ${flagFile}: ${err.message}\n`);
  process.exit(1);
}

const core = new FlagdCore(undefined, logger);
try {
  core.setConfigurations(text);
} catch (err) {
  const cause = err.cause && err.cause.message ? `: ${err.cause.message}` : '';
  process.stderr.write(`evaluate.js: cannot load flag configuration ${flagFile}: ${err.message}${cause}\n`);
  process.exit(1);
}

const on = [];
const reasons = {};
for (let i = 0; i < count; i++) {
  const result = core.resolveBooleanEvaluation(flagKey, false, { targetingKey: `user-${i}` }, logger);
  if (result.value === true) {
    on.push(i);
  }
  const reason = result.reason === undefined ? 'UNKNOWN' : String(result.reason);
  reasons[reason] = (reasons[reason] || 0) + 1;
  if (result.errorCode !== undefined) {
    emit('evaluation error', [`${result.errorCode}: ${result.errorMessage || ''}`]);
  }
}

process.stdout.write(`${JSON.stringify({ count, on, reasons })}\n`);
