// End-to-end tests of the browser build: the real page, served by `kiln serve`, in headless
// Chromium. One test trains a tiny model in the page on WebGPU (SwiftShader on a machine without a
// GPU), downloads its checkpoint and checks that the native `kiln eval` gives the loss the page
// gave; one pauses, resumes and resets a run; the last starts Chromium without WebGPU and checks
// that the page says so plainly.
// Run through tests/e2e/run.sh, which builds what these need. Slow on a CPU: minutes.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'node:test';
import { promisify } from 'node:util';
import {
  KILN, NO_WEBGPU_FLAGS, ROOT, WEBGPU_FLAGS, launchBrowser, log, num, readouts, startServer, waitForState, waitUntil,
} from './harness.mjs';

const CORPUS_CHARS = 30000; // data/shakespeare.txt is ASCII, so characters and bytes agree
const STEPS = 40, BATCH = 8, BLOCK = 32;
const SCREENSHOT = join(ROOT, 'tests/e2e/screenshot.png');
const tid = (id) => `[data-testid="${id}"]`;

test('trains in the browser', { timeout: 30 * 60_000 }, async (t) => {
  const corpus = readFileSync(join(ROOT, 'data/shakespeare.txt'), 'utf8').slice(0, CORPUS_CHARS);
  const tmp = mkdtempSync(join(tmpdir(), 'kiln-e2e-'));
  const server = await startServer();
  let browser, page, passed = false;
  try {
    browser = await launchBrowser(WEBGPU_FLAGS);
    page = browser.page;
    await page.goto(server.url);
    const ready = await waitForState(page, 'ready', { timeoutMs: 120_000, failStates: ['no-webgpu', 'error'] });
    log(`page ready on adapter "${ready.adapter}"`);

    // The preset first: choosing one may refill the size inputs, which the test then overrides.
    await page.selectOption(tid('preset-select'), 'tiny');
    await page.fill(tid('corpus-input'), corpus);
    await page.fill(tid('steps-input'), String(STEPS));
    await page.fill(tid('batch-input'), String(BATCH));
    await page.fill(tid('block-input'), String(BLOCK));
    await page.click(tid('train-button'));
    log(`training: preset tiny, ${CORPUS_CHARS} characters, ${STEPS} steps of ${BATCH} x ${BLOCK}`);
    const done = await waitForState(page, 'done', { timeoutMs: 600_000, failStates: ['error', 'no-webgpu'] });
    log(`done: step ${done.step}, loss ${done.loss} (first ${done.firstLoss}), ${done.tps} tokens/s`);

    const loss = num(done.loss), first = num(done.firstLoss);
    assert.ok(Number.isFinite(first), `loss-value has no numeric data-first attribute: ${done.firstLoss}`);
    assert.ok(loss < first, `the loss did not fall: last ${done.loss}, first ${done.firstLoss}`);
    assert.ok(done.step.startsWith(String(STEPS)), `step-value is "${done.step}", not ${STEPS}`);
    assert.ok(num(done.tps) > 0, `tokens-per-second is "${done.tps}", not a positive number`);
    assert.ok(done.sample.length > 0, 'sample-output is empty after training');

    const ckpt = join(tmp, 'ckpt.kiln');
    const [download] = await Promise.all([
      page.waitForEvent('download', { timeout: 120_000 }),
      page.click(tid('download-checkpoint')),
    ]);
    await download.saveAs(ckpt);
    log(`checkpoint downloaded as "${download.suggestedFilename()}" to ${ckpt}`);
    const scored = await waitUntil(page, 'checkpoint loss', (r) => Number.isFinite(num(r.ckptLoss)),
      { timeoutMs: 300_000, failStates: ['error'] });
    const pageLoss = num(scored.ckptLoss);
    log(`page: checkpoint loss ${scored.ckptLoss}`);

    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    log(`screenshot: ${SCREENSHOT}`);

    const data = join(tmp, 'corpus.txt');
    writeFileSync(data, corpus);
    const args = ['eval', '--checkpoint', ckpt, '--data', data, '--json'];
    log(`native: ${KILN} ${args.join(' ')}`);
    const { stdout } = await promisify(execFile)(KILN, args, { maxBuffer: 1 << 20 });
    const native = JSON.parse(stdout.trim()).loss;
    const rel = Math.abs(native - pageLoss) / pageLoss;
    log(`native loss ${native}, page loss ${pageLoss}, relative difference ${rel.toExponential(2)}`);
    assert.ok(rel <= 1e-3, `kiln eval gives loss ${native}, the page ${pageLoss}: they differ by ${rel} (> 1e-3)`);

    // The run survives a reload (IndexedDB), and the downloaded file loads back into the page.
    await page.reload();
    await waitForState(page, 'ready', { timeoutMs: 120_000, failStates: ['no-webgpu', 'error'] });
    const offer = page.locator(tid('resume-saved'));
    assert.ok(await offer.isVisible(), 'after a reload the page does not offer the saved run');
    assert.match(await offer.innerText(), new RegExp(`step ${STEPS}\\b`), 'the saved run is not the finished one');
    await page.fill(tid('corpus-input'), corpus);
    await page.setInputFiles(tid('upload-checkpoint'), ckpt);
    const loaded = await waitForState(page, 'paused', { timeoutMs: 120_000, failStates: ['error'] });
    assert.ok(loaded.step.startsWith(String(STEPS)), `the uploaded checkpoint shows step "${loaded.step}"`);
    log('reload offered the saved run; the uploaded checkpoint loaded at its step');

    t.diagnostic(`adapter: ${done.adapter}`);
    t.diagnostic(`tokens/s: ${done.tps}`);
    t.diagnostic(`loss: first ${done.firstLoss}, last ${done.loss}; checkpoint: page ${pageLoss}, native ${native}`);
    t.diagnostic(`screenshot: ${SCREENSHOT}`);
    passed = true;
  } finally {
    if (!passed && page) {
      const shot = join(ROOT, 'tests/e2e/screenshot-failure.png');
      await page.screenshot({ path: shot, fullPage: true }).then(() => log(`failure screenshot: ${shot}`), () => {});
      await readouts(page).then((r) => log(`page at failure: ${JSON.stringify({ ...r, sample: r.sample?.slice(0, 80) })}`), () => {});
    }
    await browser?.close();
    await server.stop();
    if (passed) rmSync(tmp, { recursive: true, force: true });
    else log(`kept ${tmp} for a look`);
  }
});

test('says clearly when WebGPU is missing', { timeout: 5 * 60_000 }, async () => {
  const server = await startServer();
  let browser;
  try {
    browser = await launchBrowser(NO_WEBGPU_FLAGS);
    const { page } = browser;
    await page.goto(server.url);
    const r = await waitForState(page, 'no-webgpu', { timeoutMs: 60_000, failStates: ['ready', 'error'] });
    const box = page.locator(tid('no-webgpu'));
    const shown = (await box.count()) > 0 && await box.first().isVisible();
    const boxText = shown ? await box.first().innerText() : '';
    const said = `${r.status}\n${boxText}`;
    log(`no-webgpu page says: ${said.replace(/\s+/g, ' ').slice(0, 200)}`);
    assert.match(said, /WebGPU/, 'neither the status nor a visible no-webgpu box mentions WebGPU');
    assert.match(said, /Chrome|Edge|Safari|Firefox/, 'neither the status nor a visible no-webgpu box names a browser');
  } finally {
    await browser?.close();
    await server.stop();
  }
});

test('pauses, resumes and resets', { timeout: 15 * 60_000 }, async () => {
  const server = await startServer();
  let browser;
  try {
    browser = await launchBrowser(WEBGPU_FLAGS);
    const { page } = browser;
    await page.goto(server.url);
    await waitForState(page, 'ready', { timeoutMs: 120_000, failStates: ['no-webgpu', 'error'] });
    await page.selectOption(tid('preset-select'), 'tiny');
    await page.fill(tid('corpus-input'), 'To be, or not to be, that is the question. '.repeat(200));
    await page.fill(tid('steps-input'), '30');
    await page.fill(tid('batch-input'), '4');
    await page.fill(tid('block-input'), '16');
    await page.click(tid('train-button'));
    await waitUntil(page, 'step 3', (r) => num(r.step) >= 3, { timeoutMs: 120_000, failStates: ['error'] });
    await page.click(tid('pause-button'));
    const paused = await waitForState(page, 'paused', { timeoutMs: 60_000, failStates: ['error'] });
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal((await readouts(page)).step, paused.step, 'training went on while paused');
    await page.click(tid('pause-button')); // now labelled Resume
    const done = await waitForState(page, 'done', { timeoutMs: 600_000, failStates: ['error'] });
    assert.ok(done.step.startsWith('30'), `finished at "${done.step}"`);
    log(`paused at ${paused.step}, resumed, finished at ${done.step}`);
    await page.click(tid('reset-button'));
    const reset = await waitForState(page, 'ready', { timeoutMs: 60_000, failStates: ['error'] });
    assert.equal(reset.step, '0');
  } finally {
    await browser?.close();
    await server.stop();
  }
});

// "Open model" with a Hugging Face GPT-2 of GPT-2's full 50,257-token vocabulary (2 layers of 32
// channels, tests/fixtures/gpt2_tiny, float16, with GPT-2's vocab.json and merges.txt from
// scripts/gpt2-tokenizer.sh): the page shows its shape and memory, opens it from the files,
// samples from it and trains it a few steps.
test('opens a GPT-2 from its files, samples from it and trains it', { timeout: 20 * 60_000 }, async () => {
  const files = ['tests/fixtures/gpt2_tiny/config.json', 'tests/fixtures/gpt2_tiny/model.safetensors',
    '.tools/gpt2-tokenizer/vocab.json', '.tools/gpt2-tokenizer/merges.txt'].map((f) => join(ROOT, f));
  const server = await startServer();
  let browser;
  try {
    browser = await launchBrowser(WEBGPU_FLAGS);
    const { page } = browser;
    await page.goto(server.url);
    await waitForState(page, 'ready', { timeoutMs: 120_000, failStates: ['no-webgpu', 'error'] });
    await page.fill(tid('corpus-input'), readFileSync(join(ROOT, 'data/shakespeare.txt'), 'utf8').slice(0, 20000));
    await page.fill(tid('steps-input'), '3');
    await page.fill(tid('batch-input'), '2');
    await page.fill(tid('block-input'), '16');
    await page.setInputFiles(tid('model-files'), files);
    await page.waitForFunction(() => !document.querySelector('[data-testid="open-model"]').disabled, null, { timeout: 120_000 });
    const info = await page.textContent(tid('model-info'));
    log(`model info: ${info}`);
    assert.match(info, /2 layers, 4 heads, 32 channels, vocabulary 50257, 64 positions/);
    assert.match(info, /Sampling needs about \d+ MiB/);
    await page.click(tid('open-model'));
    const opened = await waitForState(page, 'paused', { timeoutMs: 300_000, failStates: ['error'] });
    log(`opened: step ${opened.step}`);

    await page.fill(tid('prompt-input'), 'To be, or not to be');
    await page.fill('#length', '8');
    await page.click(tid('generate-button'));
    const generated = await page.waitForFunction(() => {
      const t = document.querySelector('[data-testid="generated-output"]').textContent;
      return t.length > 'To be, or not to be'.length + 8 ? t : null;
    }, null, { timeout: 300_000 });
    log(`generated: ${JSON.stringify(await generated.jsonValue())}`);

    await page.click(tid('pause-button')); // labelled Resume: trains the opened model
    const done = await waitForState(page, 'done', { timeoutMs: 900_000, failStates: ['error'] });
    log(`trained: step ${done.step}, loss ${done.loss} (first ${done.firstLoss})`);
    assert.ok(done.step.startsWith('3'), `finished at "${done.step}"`);
    assert.ok(num(done.loss) > 0 && num(done.loss) < 12, `loss "${done.loss}" is not a sane cross-entropy over 50257 tokens`);
  } finally {
    await browser?.close();
    await server.stop();
  }
});
