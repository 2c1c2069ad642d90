#!/usr/bin/env node
// Independent check of the Mermaid charts flagramp writes into job summaries and pull request
// comments, for the flagramp test suite.
//
//   node tests/node/mermaid-parse.mjs < charts.json
//
// Reads a JSON array of chart sources (the text inside each ```mermaid fence) on stdin, parses
// each with the real Mermaid parser (the `mermaid` package, pinned in package.json, under jsdom
// because Mermaid expects a browser) and prints one JSON array on stdout, one entry per chart:
//
//   [{"ok":true,"type":"xychart"}, {"ok":false,"error":"Parse error on line 3: ..."}]
//
// Exit status: 0 when every chart was parsed (whatever the verdicts), 2 on bad input.
import { JSDOM } from 'jsdom';

// Mermaid reaches for `window` and `document` (DOMPurify, text measuring) as it loads: give it
// jsdom's before importing it.
const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false });

let input = '';
for await (const chunk of process.stdin) {
  input += chunk;
}
let charts;
try {
  charts = JSON.parse(input);
} catch (e) {
  process.stderr.write(`mermaid-parse.mjs: stdin is not JSON: ${e.message}\n`);
  process.exit(2);
}
if (!Array.isArray(charts) || !charts.every((c) => typeof c === 'string')) {
  process.stderr.write('mermaid-parse.mjs: stdin must be a JSON array of strings\n');
  process.exit(2);
}

const results = [];
for (const chart of charts) {
  try {
    const parsed = await mermaid.parse(chart);
    results.push({ ok: true, type: parsed.diagramType });
  } catch (e) {
    results.push({ ok: false, error: String(e.message ?? e) });
  }
}
process.stdout.write(JSON.stringify(results) + '\n');
