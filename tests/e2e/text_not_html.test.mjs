// The page writes what comes from files, models and the visitor as text, never as HTML: no
// script of the page may set innerHTML or outerHTML, call insertAdjacentHTML or document.write
// (web/dom.js builds elements with text children instead). A static check of every script the
// page loads, so a new unescaped write fails here rather than in someone's browser.
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import test from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = join(fileURLToPath(import.meta.url), '../../..');
const HTML_WRITES = /\.(innerHTML|outerHTML)\s*[+]?=|insertAdjacentHTML\s*\(|document\.write(ln)?\s*\(/;

test('no script of the page writes HTML', () => {
  const scripts = readdirSync(join(ROOT, 'web')).filter((f) => f.endsWith('.js')).map((f) => join('web', f));
  assert.ok(scripts.includes(join('web', 'app.js')), 'web/app.js is where the page starts');
  const inline = readFileSync(join(ROOT, 'index.html'), 'utf8');
  const found = [];
  for (const [name, text] of [...scripts.map((f) => [f, readFileSync(join(ROOT, f), 'utf8')]), ['index.html', inline]]) {
    text.split('\n').forEach((line, i) => { if (HTML_WRITES.test(line)) found.push(`${name}:${i + 1}: ${line.trim()}`); });
  }
  assert.deepEqual(found, [], `HTML written from data (use web/dom.js): \n${found.join('\n')}`);
});

test('the check catches what it is for', () => {
  for (const bad of ["x.innerHTML = s;", "x.outerHTML += s", "x.insertAdjacentHTML('beforeend', s)", 'document.write(s)']) {
    assert.ok(HTML_WRITES.test(bad), bad);
  }
  assert.ok(!HTML_WRITES.test('x.textContent = s;'));
});
