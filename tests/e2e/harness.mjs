// Helpers for the end-to-end tests (page.test.mjs): start `kiln serve`, launch headless Chromium
// through playwright-core, read the page's readouts by data-testid, and wait for a status state
// while logging progress to stderr. No assertions live here; the tests make them.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const KILN = join(ROOT, 'target/release/kiln');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

// Always passed: no sandbox (containers, root), and no network or profile chatter of its own.
const BASE_FLAGS = ['--no-sandbox', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run'];
// With Debian's Chromium 156 headless on a machine without a GPU, this one flag is enough: WebGPU
// then runs on Chromium's bundled SwiftShader (Vulkan on the CPU), adapter.info = {vendor:
// "google", architecture: "swiftshader"}, in the page and in its workers. --enable-features=Vulkan,
// --use-angle=swiftshader and --use-webgpu-adapter=swiftshader change nothing here (probe.mjs).
// navigator.gpu needs a secure context: http://127.0.0.1 is one, so `kiln serve` qualifies.
export const WEBGPU_FLAGS = ['--enable-unsafe-webgpu'];
// Without --enable-unsafe-webgpu on Linux, navigator.gpu exists but requestAdapter() gives null.
export const NO_WEBGPU_FLAGS = ['--disable-gpu'];

const t0 = Date.now();
/** One progress line on stderr: wall clock, seconds since the tests started, message. */
export function log(msg) {
  const s = ((Date.now() - t0) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`${new Date().toISOString().slice(11, 19)} +${s}s ${msg}\n`);
}

/** Starts `kiln serve --port 0` on the repository root; resolves with its URL and a stop(). */
export function startServer() {
  const child = spawn(KILN, ['serve', '--port', '0', '--dir', ROOT], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d; });
  const stop = () => new Promise((ok) => {
    if (child.exitCode !== null || child.signalCode !== null) return ok();
    child.once('exit', () => ok());
    child.kill('SIGTERM');
  });
  return new Promise((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => { stop(); fail(new Error(`kiln serve printed no URL in 30 s: ${stderr}`)); }, 30_000);
    child.on('error', (e) => { clearTimeout(timer); fail(new Error(`cannot start ${KILN}: ${e.message}`)); });
    child.on('exit', (code) => { clearTimeout(timer); fail(new Error(`kiln serve exited (${code}): ${stderr.trim()}`)); });
    child.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n');
      if (line.length < 2) return; // the first line is not complete yet
      clearTimeout(timer);
      const m = /^serving .* on (http:\/\/127\.0\.0\.1:\d+\/)$/.exec(line[0]);
      if (!m) { stop(); return fail(new Error(`unexpected first line from kiln serve: ${line[0]}`)); }
      log(`server: ${line[0]}`);
      ok({ url: m[1], stop });
    });
  });
}

/** Launches headless Chromium on a fresh profile; page console errors and crashes go to the log. */
export async function launchBrowser(flags) {
  const profile = mkdtempSync(join(tmpdir(), 'kiln-e2e-profile-'));
  const args = [...BASE_FLAGS, ...flags];
  log(`chromium ${CHROMIUM} ${args.join(' ')}`);
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args, acceptDownloads: true, viewport: { width: 1280, height: 900 },
  });
  const page = context.pages()[0] ?? await context.newPage();
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') log(`page ${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => log(`page exception: ${e.message}`));
  page.on('crash', () => log('page crashed'));
  page.on('response', (r) => { if (r.status() >= 400) log(`page got ${r.status()} for ${r.url()}`); });
  const close = async () => {
    await context.close().catch((e) => log(`closing chromium: ${e.message}`));
    rmSync(profile, { recursive: true, force: true });
  };
  return { page, close };
}

/** The readouts a test looks at, by data-testid: text, plus a few attributes. */
export function readouts(page) {
  return page.evaluate(() => {
    const el = (id) => document.querySelector(`[data-testid="${id}"]`);
    const text = (id) => el(id)?.textContent.trim() ?? null;
    return {
      state: el('status')?.getAttribute('data-state') ?? null, status: text('status'),
      step: text('step-value'), loss: text('loss-value'), firstLoss: el('loss-value')?.getAttribute('data-first') ?? null,
      tps: text('tokens-per-second'), adapter: text('adapter-name'), sample: text('sample-output'),
      ckptLoss: el('checkpoint-loss')?.getAttribute('data-value') ?? text('checkpoint-loss'),
    };
  });
}

/**
 * Polls the page until `done(readouts)` holds, and returns those readouts. Fails at once when
 * the status enters one of `failStates`, and after `timeoutMs`, with what the page last showed.
 * Logs the status line whenever it changes, and the step and loss at most every 15 s.
 */
export async function waitUntil(page, what, done, { timeoutMs, failStates = ['error'] }) {
  const start = Date.now();
  let lastStatus = null, lastLog = 0, r;
  for (;;) {
    r = await readouts(page);
    if (done(r)) return r;
    if (failStates.includes(r.state)) throw new Error(`waiting for ${what}, the status became ${r.state}: ${r.status}`);
    if (Date.now() - start > timeoutMs) {
      throw new Error(`no ${what} after ${timeoutMs / 1000} s; status ${r.state}: ${r.status}`);
    }
    const line = `${r.state}: ${r.status}`;
    if (line !== lastStatus || Date.now() - lastLog > 15_000) {
      log(`[${line}] step ${r.step} loss ${r.loss} tokens/s ${r.tps}`);
      lastStatus = line; lastLog = Date.now();
    }
    await new Promise((ok) => setTimeout(ok, 1000));
  }
}

/** Waits for `data-state="<state>"` on the status element. */
export function waitForState(page, state, opts) {
  return waitUntil(page, `status ${state}`, (r) => r.state === state, opts);
}

/** A readout as a number: "1,234.5" and "1234.5 tok/s" both give 1234.5; "–" gives NaN. */
export function num(text) {
  return text == null ? NaN : parseFloat(String(text).replace(/[,\s]/g, ''));
}

/**
 * Runs `body(page, server)` on a fresh `kiln serve` and a fresh headless Chromium with `flags`,
 * and closes both afterwards, whatever happens.
 */
export async function withPage(flags, body) {
  const server = await startServer();
  let browser;
  try {
    browser = await launchBrowser(flags);
    return await body(browser.page, server);
  } finally {
    await browser?.close();
    await server.stop();
  }
}

/**
 * Waits for the page to be ready, then trains the tiny preset (block 16, batch 4) for `steps`
 * steps on a repeated line, with learning rate `lr` when given.
 */
export async function startTinyRun(page, { steps, lr, text = 'Now is the winter of our discontent. ' }) {
  const tid = (id) => `[data-testid="${id}"]`;
  await waitForState(page, 'ready', { timeoutMs: 120_000, failStates: ['no-webgpu', 'error'] });
  await page.selectOption(tid('preset-select'), 'tiny');
  await page.fill(tid('corpus-input'), text.repeat(200));
  await page.fill(tid('steps-input'), String(steps));
  await page.fill(tid('batch-input'), '4');
  await page.fill(tid('block-input'), '16');
  if (lr) await page.fill(tid('lr-input'), lr);
  await page.click(tid('train-button'));
}
