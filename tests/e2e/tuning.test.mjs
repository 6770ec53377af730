// The page's kernel trial on a first visit: the page is ready at once with the default kernels
// and times the candidates while idle; a finished trial's choice is used and kept for the next
// visit, and pressing Train stops a running trial (the run uses the defaults; nothing is kept,
// so the next visit times again). Both tests start from a fresh browser profile.
// Run through tests/e2e/run.sh, which builds what it needs.
import assert from 'node:assert/strict';
import test from 'node:test';
import { WEBGPU_FLAGS, log, num, readouts, startTinyRun, waitForState, withPage } from './harness.mjs';

const tid = (id) => `[data-testid="${id}"]`;

/** How the kernels in use were chosen (`data-tuning`), the trial's times and the tooltip. */
const tuning = (page) => page.evaluate(() => {
  const el = document.querySelector('[data-testid="adapter-name"]');
  return { how: el.dataset.tuning ?? null, trial: JSON.parse(el.dataset.trial ?? 'null'), title: el.title };
});

const ready = (page) => waitForState(page, 'ready', { timeoutMs: 120_000, failStates: ['no-webgpu', 'error'] });

test('a first visit is ready before its kernel trial, and the next visit keeps the choice', { timeout: 10 * 60_000 }, async () => {
  await withPage(WEBGPU_FLAGS, async (page, server) => {
    await page.goto(server.url);
    await ready(page);
    const first = await tuning(page);
    assert.equal(first.how, 'pending', `a first visit should start with the defaults, not "${first.how}"`);
    assert.ok(await page.locator(tid('tuning-note')).isVisible(), 'no note says the kernels are being timed');
    const started = Date.now();
    for (;;) {
      const t = await tuning(page);
      if (t.how !== 'pending') break;
      assert.ok(Date.now() - started < 300_000, 'the kernel trial did not finish in 300 s');
      await new Promise((ok) => setTimeout(ok, 500));
    }
    const timed = await tuning(page);
    log(`trial finished after ${((Date.now() - started) / 1000).toFixed(1)} s: ${timed.title}`);
    assert.equal(timed.how, 'timed');
    for (const kind of ['matmul', 'matmul_small', 'matmul_large', 'norm', 'attention_rows', 'split_k']) {
      const times = Object.values(timed.trial?.[kind] ?? {});
      assert.ok(times.length > 0 && times.every((ms) => ms > 0), `no times for ${kind}: ${JSON.stringify(timed.trial)}`);
    }
    assert.ok(!(await page.locator(tid('tuning-note')).isVisible()), 'the timing note stays after the trial');

    await page.reload();
    await ready(page);
    const kept = await tuning(page);
    assert.equal(kept.how, 'kept', 'the next visit did not use the kept choice');
    assert.equal(kept.title.replace(/ \(.*\)$/, ''), timed.title.replace(/ \(.*\)$/, ''), 'the next visit chose other kernels');
  });
});

test('pressing Train stops the kernel trial and trains on the defaults', { timeout: 10 * 60_000 }, async () => {
  await withPage(WEBGPU_FLAGS, async (page, server) => {
    await page.goto(server.url);
    await startTinyRun(page, { steps: 5 });
    const done = await waitForState(page, 'done', { timeoutMs: 300_000, failStates: ['error', 'no-webgpu'] });
    assert.ok(done.step.startsWith('5'), `finished at "${done.step}"`);
    assert.ok(Number.isFinite(num(done.loss)), `loss "${done.loss}"`);
    // On SwiftShader a whole trial takes tens of seconds; Train came within a second of ready.
    const t = await tuning(page);
    assert.equal(t.how, 'pending', 'the trial was not stopped by Train (or finished first)');
    assert.ok(!(await page.locator(tid('tuning-note')).isVisible()), 'the timing note stays after the trial stopped');
    await page.reload();
    await ready(page);
    assert.equal((await tuning(page)).how, 'pending', 'a stopped trial left a choice behind');
    const r = await readouts(page);
    log(`after the reload: ${r.status}; the trial runs again`);
  });
});
