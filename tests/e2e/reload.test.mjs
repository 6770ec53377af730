// A reload at any moment of a run in the page keeps the last saved checkpoint: the page offers
// it, it loads, and training goes on from its step. The page saves at each evaluation, the whole
// checkpoint as one IndexedDB record in one transaction, so a reload that lands mid-write aborts
// that transaction and the previous record stands; this test reloads at several moments of a
// run, without choosing them to miss the writes.
// Run through tests/e2e/run.sh, which builds what it needs.
import assert from 'node:assert/strict';
import test from 'node:test';
import { WEBGPU_FLAGS, log, num, readouts, startTinyRun, waitForState, waitUntil, withPage } from './harness.mjs';

const tid = (id) => `[data-testid="${id}"]`;
const STEPS = 60;

test('a reload at any moment keeps the last saved checkpoint', { timeout: 20 * 60_000 }, async () => {
  await withPage(WEBGPU_FLAGS, async (page, server) => {
    await page.goto(server.url);
    await startTinyRun(page, { steps: STEPS });
    let saved = 0;
    for (const at of [17, 33, 48]) {
      await waitUntil(page, `step ${at}`, (r) => num(r.step) >= at, { timeoutMs: 300_000, failStates: ['error'] });
      const before = num((await readouts(page)).step);
      await page.reload();
      await waitForState(page, 'ready', { timeoutMs: 120_000, failStates: ['no-webgpu', 'error'] });
      const offer = page.locator(tid('resume-saved'));
      assert.ok(await offer.isVisible(), `after a reload at step ${before} no saved run is offered`);
      const step = Number(/step (\d+)/.exec(await offer.innerText())[1]);
      assert.ok(step >= saved && step <= before && step > 0, `saved step ${step} after a reload at ${before} (last ${saved})`);
      saved = step;
      await offer.click();
      await waitUntil(page, `training past step ${step}`, (r) => num(r.step) > step, { timeoutMs: 300_000, failStates: ['error'] });
      log(`reloaded at step ${before}: the checkpoint of step ${step} loaded and training went on`);
    }
    const done = await waitForState(page, 'done', { timeoutMs: 600_000, failStates: ['error'] });
    assert.ok(done.step.startsWith(String(STEPS)), `finished at "${done.step}"`);
  });
});
