// Times training in the page on this machine's WebGPU (SwiftShader without a GPU): the `tiny`
// preset at its own batch and block on the page's default corpus, on a fresh browser profile
// (a first visit). Prints one JSON line: seconds from opening the page to "ready", to the end
// of the kernel trial the page runs while idle (null with `at-ready`), from pressing Train to
// the first finished step, the tokens/s the page showed at the end (the last step's) and the
// run's own from its first step to its end. Train is pressed once
// the trial has finished, or with `at-ready` as soon as the page is ready (the trial then
// stops and the run uses the default kernels). Not a test (no pass or fail): figures for
// BENCHMARKS.md.
// Usage, after tests/e2e/run.sh has built everything once:
//   node tests/e2e/bench_page.mjs [steps] [at-ready]
import { launchBrowser, log, num, readouts, startServer, waitForState, WEBGPU_FLAGS } from './harness.mjs';

const steps = Number(process.argv[2] ?? 30);
const atReady = process.argv[3] === 'at-ready';
const tid = (id) => `[data-testid="${id}"]`;
const server = await startServer();
const browser = await launchBrowser(WEBGPU_FLAGS);
try {
  const { page } = browser;
  const opened = Date.now();
  await page.goto(server.url);
  const ready = await waitForState(page, 'ready', { timeoutMs: 120_000, failStates: ['no-webgpu', 'error'] });
  const readyS = (Date.now() - opened) / 1000;
  const how = () => page.evaluate(() => document.querySelector('[data-testid="adapter-name"]')?.dataset.tuning);
  let tunedS = null;
  if (!atReady) {
    while (await how() === 'pending') await new Promise((ok) => setTimeout(ok, 100));
    tunedS = (Date.now() - opened) / 1000;
  }
  await page.selectOption(tid('preset-select'), 'tiny');
  await page.fill(tid('steps-input'), String(steps));
  const pressed = Date.now();
  // Forced: an unforced click first waits for animation frames in which the button stays put,
  // and on a CPU adapter frames wait for the GPU process while it compiles (2.8-3.3 s before the
  // click handler ran, 20-30 ms forced). The click itself is the same input event either way.
  await page.click(tid('train-button'), { force: true });
  // Polled every 50 ms: the first step's readout, then the end of the run.
  let r;
  for (;;) {
    r = await readouts(page);
    if (num(r.step) >= 1 || r.state === 'error') break;
    await new Promise((ok) => setTimeout(ok, 50));
  }
  const firstStepS = (Date.now() - pressed) / 1000;
  // The run's own rate from the first step to the end (polled every 100 ms), evaluations and
  // samples included: steadier than the rate the page shows, which is the last step's.
  const firstAt = Date.now();
  while ((r = await readouts(page)).state !== 'done') {
    if (r.state === 'error') throw new Error(`the run failed: ${r.status}`);
    await new Promise((ok) => setTimeout(ok, 100));
  }
  const runS = (Date.now() - firstAt) / 1000;
  const tokensPerStep = await page.evaluate(() => Number(document.getElementById('batch').value) * Number(document.getElementById('block').value));
  const done = await waitForState(page, 'done', { timeoutMs: 1_800_000, failStates: ['error'] });
  const shown = await page.evaluate(() => document.querySelector('[data-testid="first-step"]')?.textContent ?? null);
  const matmul = await page.evaluate(() => document.querySelector('[data-testid="adapter-name"]')?.title ?? null);
  const trialMs = await page.evaluate(() => JSON.parse(document.querySelector('[data-testid="adapter-name"]')?.dataset.trial ?? 'null'));
  console.log(JSON.stringify({ event: 'bench_page', adapter: ready.adapter, preset: 'tiny', steps,
    open_to_ready_s: readyS, open_to_trial_end_s: tunedS, kernels: await how(), train_to_first_step_s: firstStepS, first_step_shown: shown, matmul, trial_ms: trialMs, tokens_per_s: num(done.tps),
    run_tokens_per_s: Math.round((steps - 1) * tokensPerStep / runS) }));
} finally {
  await browser.close();
  await server.stop();
  log('done');
}
