// Faults in the page: a GPU device lost mid-run, and a run whose steps stop being finite.
// A lost device is provoked by destroying the worker's GPUDevice: the test serves the page's own
// worker.js with a few lines in front that keep each device it asks for (nothing in the page
// itself can lose its device on demand). The page must say what happened, offer the last
// checkpoint it kept, and train on from it. A huge learning rate makes every loss NaN: the page
// counts the skipped steps under the chart and stops the run with the reason.
// Run through tests/e2e/run.sh, which builds what it needs.
import assert from 'node:assert/strict';
import test from 'node:test';
import { WEBGPU_FLAGS, log, num, readouts, startTinyRun, waitForState, waitUntil, withPage } from './harness.mjs';

const tid = (id) => `[data-testid="${id}"]`;

// Put in front of worker.js: every GPUDevice the worker gets is kept where the test can reach it.
const KEEP_DEVICES = `
const requestDevice = GPUAdapter.prototype.requestDevice;
GPUAdapter.prototype.requestDevice = async function (...args) {
  const device = await requestDevice.apply(this, args);
  (self.__kilnTestDevices ||= []).push(device);
  return device;
};
`;

test('a lost GPU device offers the last checkpoint, and the run goes on from it', { timeout: 15 * 60_000 }, async () => {
  await withPage(WEBGPU_FLAGS, async (page, server) => {
    await page.route('**/web/worker.js', async (route) => {
      const response = await route.fetch();
      await route.fulfill({ response, body: KEEP_DEVICES + await response.text() });
    });
    await page.goto(server.url);
    // Saved at each evaluation: steps 50, 100, 150, 200 (long enough that a fast machine does
    // not finish before the device is destroyed).
    await startTinyRun(page, { steps: 200 });
    await waitUntil(page, 'step 60', (r) => num(r.step) >= 60, { timeoutMs: 300_000, failStates: ['error'] });
    const worker = page.workers().find((w) => w.url().includes('worker.js'));
    assert.ok(worker, 'the page has no training worker');
    const kept = await worker.evaluate(() => self.__kilnTestDevices?.length ?? 0);
    assert.ok(kept > 0, 'the worker asked for no GPU device through the wrapped requestDevice');
    const lostAt = num((await readouts(page)).step);
    await worker.evaluate(() => self.__kilnTestDevices.at(-1).destroy());
    log(`destroyed the worker's GPU device at step ${lostAt}`);
    const offer = page.locator(tid('resume-saved'));
    await offer.waitFor({ state: 'visible', timeout: 120_000 });
    const r = await readouts(page);
    assert.equal(r.state, 'error', `after the device was lost the status is ${r.state}: ${r.status}`);
    assert.match(r.status, /device was lost/, r.status);
    const saved = Number(/step (\d+)/.exec(await offer.innerText())[1]);
    assert.ok(saved >= 50 && saved <= lostAt, `offered step ${saved} after losing the device at step ${lostAt}`);
    await offer.click();
    // The error and the old step stay on show until the worker has loaded the checkpoint.
    await waitUntil(page, 'the saved run to start', (x) => x.state === 'training', { timeoutMs: 120_000, failStates: [] });
    await waitUntil(page, `training past step ${saved}`, (x) => num(x.step) > saved, { timeoutMs: 300_000, failStates: ['error'] });
    log(`the checkpoint of step ${saved} loaded on a new device and training went on`);
    const done = await waitForState(page, 'done', { timeoutMs: 600_000, failStates: ['error'] });
    assert.ok(done.step.startsWith('200'), `finished at "${done.step}"`);
  });
});

test('steps that are not finite are counted and skipped, and a run of them stops', { timeout: 10 * 60_000 }, async () => {
  await withPage(WEBGPU_FLAGS, async (page, server) => {
    await page.goto(server.url);
    await startTinyRun(page, { steps: 40, lr: '1e30' });
    const r = await waitForState(page, 'error', { timeoutMs: 300_000, failStates: [] });
    assert.match(r.status, /not finite in each of the last 10 steps/, r.status);
    const skipped = await page.locator(tid('skipped')).innerText();
    const count = Number(/(\d+) steps? skipped/.exec(skipped)?.[1]);
    assert.ok(count >= 10, `the page shows "${skipped}"`);
    // One step per call on a software adapter (stops at 11); ten on a GPU, where the count is
    // read at the end of each call (stops at 20 or 21).
    assert.ok(num(r.step) <= 21, `the run went on to step ${r.step}`);
    log(`stopped at step ${r.step}: ${skipped}`);
  });
});
