// End-to-end test of the page's Fine-tune tab, in headless Chromium on WebGPU (SwiftShader on a
// machine without a GPU): a tiny model pre-trained briefly in the Train tab is scored on the
// built-in genre task zero-shot and few-shot, fine-tuned on it in the tab, and scored again; the
// tab must show the three scores with their counts, examples with the answers before and after,
// the answer loss before and after, and how far each part's weights moved. A bad task file
// first: its one-line error, with the line, must show as text.
// Run through tests/e2e/run.sh, which builds what it needs. Slow on a CPU: a few minutes.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import test from 'node:test';
import { ROOT, WEBGPU_FLAGS, launchBrowser, log, num, readouts, startServer, waitForState } from './harness.mjs';

const PRE_STEPS = 10, BLOCK = 32, TASK = 'genre', LIMIT = 24, FT_STEPS = 30, FT_BATCH = 8, FT_LR = 0.001;
const SCREENSHOT = join(ROOT, 'tests/e2e/finetune-screenshot.png');
const tid = (id) => `[data-testid="${id}"]`;

/** Waits for the tab's status (data-state on ft-status) to become `state`; fails on "error". */
async function waitForTab(page, state, timeoutMs) {
  const start = Date.now();
  let last = '';
  for (;;) {
    const s = await page.evaluate(() => {
      const e = document.querySelector('[data-testid="ft-status"]');
      return { state: e.dataset.state, text: e.textContent };
    });
    if (s.state === state) return s;
    if (s.state === 'error') throw new Error(`waiting for ${state}, the Fine-tune tab says: ${s.text}`);
    if (Date.now() - start > timeoutMs) throw new Error(`no ${state} after ${timeoutMs / 1000} s; the tab says: ${s.text}`);
    if (s.text !== last && !/example \d+ of/.test(s.text)) { log(`fine-tune tab [${s.state}]: ${s.text}`); last = s.text; }
    await new Promise((ok) => setTimeout(ok, 1000));
  }
}

/** What the tab shows: the score cells, the examples' answers, the loss readouts, the change bars. */
function tabReadouts(page) {
  return page.evaluate(() => {
    const q = (sel) => [...document.querySelectorAll(sel)];
    const cell = (id) => document.querySelector(`[data-testid="${id}"]`);
    const col = (c) => ({ value: cell(`ft-score-${c}`)?.dataset.value, text: cell(`ft-score-${c}`)?.textContent,
      count: cell(`ft-count-${c}`)?.textContent });
    return {
      scores: { zero: col('zero'), few: col('few'), tuned: col('tuned') },
      table: cell('ft-scores').innerText,
      examples: q('[data-testid="ft-example"]').map((tr) => ({
        zero: tr.querySelector('[data-testid="ft-said-zero"]')?.textContent,
        tuned: tr.querySelector('[data-testid="ft-said-tuned"]')?.textContent,
        text: tr.innerText,
      })),
      valBefore: cell('ft-val-before').textContent, valAfter: cell('ft-val').textContent, step: cell('ft-step').textContent,
      changes: q('[data-testid="ft-change"]').map((d) => d.textContent),
    };
  });
}

test('fine-tunes a model on a built-in task and scores it before and after', { timeout: 20 * 60_000 }, async (t) => {
  const server = await startServer();
  let browser, page, passed = false;
  try {
    browser = await launchBrowser(WEBGPU_FLAGS);
    page = browser.page;
    await page.goto(server.url);
    await waitForState(page, 'ready', { timeoutMs: 120_000, failStates: ['no-webgpu', 'error'] });

    // A model to fine-tune: the tiny preset, a few steps on the embedded Shakespeare (whose
    // characters the tasks use), with a short block so every step and score is quick.
    await page.selectOption(tid('preset-select'), 'tiny');
    await page.fill(tid('steps-input'), String(PRE_STEPS));
    await page.fill(tid('batch-input'), '8');
    await page.fill(tid('block-input'), String(BLOCK));
    await page.click(tid('train-button'));
    const trained = await waitForState(page, 'done', { timeoutMs: 600_000, failStates: ['error', 'no-webgpu'] });
    log(`pre-trained: step ${trained.step}, loss ${trained.loss}`);

    await page.click(tid('tab-finetune'));
    // A bad task file first: its one-line error, with the line, shown as text (its name is HTML).
    await page.selectOption(tid('ft-task-select'), 'file');
    await page.setInputFiles(tid('ft-train-file'), { name: '<i>bad</i>.jsonl', mimeType: 'application/json',
      buffer: Buffer.from('{"prompt": "a", "completion": " b"}\n{"prompt": "c"}\n') });
    await page.waitForFunction(() => document.querySelector('[data-testid="ft-task-info"]').classList.contains('bad'), null, { timeout: 60_000 });
    const bad = await page.evaluate(() => { const e = document.querySelector('[data-testid="ft-task-info"]'); return { text: e.textContent, tags: e.children.length }; });
    log(`bad task file: ${bad.text}`);
    assert.equal(bad.text, '<i>bad</i>.jsonl line 2: no "completion"');
    assert.equal(bad.tags, 0, 'the error was written as HTML');
    assert.ok(await page.isDisabled(tid('ft-score-before')), 'Score before is enabled without a task');

    await page.selectOption(tid('ft-task-select'), TASK);
    await page.waitForFunction((name) => document.querySelector('[data-testid="ft-task-info"]').textContent.startsWith(`${name}:`),
      TASK, { timeout: 60_000 });
    log(`task: ${await page.textContent(tid('ft-task-info'))}`);
    const shots = Number(await page.inputValue(tid('ft-shots-input')));
    assert.ok(shots >= 1, `the shots input holds "${shots}", not the core's default`);
    await page.fill(tid('ft-limit-input'), String(LIMIT));

    await page.click(tid('ft-score-before'));
    await waitForTab(page, 'scored-before', 600_000);
    await page.fill(tid('ft-steps-input'), String(FT_STEPS));
    await page.fill(tid('ft-batch-input'), String(FT_BATCH));
    await page.fill(tid('ft-lr-input'), String(FT_LR));
    await page.click(tid('ft-train-button'));
    const tuned = await waitForTab(page, 'tuned', 900_000);
    log(`fine-tune tab: ${tuned.text}`);
    await page.click(tid('ft-score-after'));
    await waitForTab(page, 'scored-after', 600_000);

    const r = await tabReadouts(page);
    log(`scores:\n${r.table}`);
    for (const e of r.examples) log(`example: ${e.text.replace(/\s+/g, ' ')}`);
    log(`answer loss ${r.valBefore} -> ${r.valAfter}; weight changes: ${r.changes.join('; ')}`);
    for (const c of ['zero', 'few', 'tuned']) {
      const v = Number(r.scores[c].value);
      assert.ok(v >= 0 && v <= 1, `the ${c} score is "${r.scores[c].value}", not a number in [0, 1]`);
      assert.match(r.scores[c].text, /^\d+(\.\d)?%$/, `the ${c} score reads "${r.scores[c].text}"`);
      assert.equal(r.scores[c].count, String(LIMIT), `the ${c} column counts ${r.scores[c].count} examples, not ${LIMIT}`);
    }
    assert.match(r.table, /accuracy/);
    assert.match(r.table, /95% interval/);
    assert.ok(r.examples.length >= 3, `${r.examples.length} examples shown`);
    for (const e of r.examples) {
      for (const said of [e.zero, e.tuned]) {
        assert.match(said ?? '', /^[✓✗] " (comedy|tragedy|history)"$/, `an answer reads "${said}", not one of the task's choices`);
      }
    }
    assert.ok(r.step.startsWith(String(FT_STEPS)), `the fine-tune step reads "${r.step}"`);
    const [before, after] = [num(r.valBefore), num(r.valAfter)];
    assert.ok(before > 0 && after > 0, `answer loss readouts "${r.valBefore}" and "${r.valAfter}" are not losses`);
    assert.ok(after < before, `the answer loss did not fall: ${before} -> ${after}`);
    assert.ok(r.changes.length >= 4, `${r.changes.length} weight-change rows`);
    assert.equal((await readouts(page)).state, 'done', 'the header does not say the run is done after fine-tuning');

    // Then LoRA on top: the weights frozen, rank-4 adapters trained, scored with them merged in.
    await page.selectOption(tid('ft-method'), 'lora');
    await page.fill(tid('ft-rank-input'), '4');
    await page.fill(tid('ft-steps-input'), '10');
    await page.fill(tid('ft-lr-input'), '0.01');
    await page.click(tid('ft-train-button'));
    const lora = await waitForTab(page, 'tuned', 900_000);
    log(`LoRA fine-tune: ${lora.text}`);
    await page.click(tid('ft-score-after'));
    await waitForTab(page, 'scored-after', 600_000);
    const l = await tabReadouts(page);
    log(`after LoRA:\n${l.table}\nweight changes: ${l.changes.join('; ')}`);
    assert.ok(l.step.startsWith('10'), `the LoRA step reads "${l.step}"`);
    const lv = Number(l.scores.tuned.value);
    assert.ok(lv >= 0 && lv <= 1, `the LoRA score is "${l.scores.tuned.value}"`);
    assert.ok(num(l.valAfter) > 0, `the answer loss after LoRA reads "${l.valAfter}"`);

    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    t.diagnostic(`scores (zero-shot, ${shots}-shot, fine-tuned) on ${LIMIT} ${TASK} test examples: ` +
      `${r.scores.zero.text}, ${r.scores.few.text}, ${r.scores.tuned.text}`);
    t.diagnostic(`answer loss ${r.valBefore} -> ${r.valAfter} after ${FT_STEPS} steps; screenshot ${SCREENSHOT}`);
    passed = true;
  } finally {
    if (!passed && page) {
      const shot = join(ROOT, 'tests/e2e/screenshot-failure.png');
      await page.screenshot({ path: shot, fullPage: true }).then(() => log(`failure screenshot: ${shot}`), () => {});
    }
    await browser?.close();
    await server.stop();
  }
});
