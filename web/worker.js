// Kiln's Web Worker: owns the WebGPU session and the training loop, so the page never freezes.
// Messages in: {cmd, ...}; messages out: {type, ...}; the Fine-tune tab's `ft-` commands are
// handled in finetune-worker.js. Checkpoints are also kept in IndexedDB so a reload (or a lost
// GPU device) can resume from the last one.
import init, { Session, default_corpus, defaults, presets } from './pkg/kiln_web.js';
import { finetuneCommand } from './finetune-worker.js';

let session = null;
let corpus = '';      // the text being trained on
let settings = null;  // {steps, evalEvery, sampleEvery, ...}
let paused = false;
let DEFAULTS = null;  // the core's defaults (kiln::config::defaults_json), read once
let chosenModel = null; // {names, contents}: the files of "Open model", kept between inspect and load
let trainPressed = null; // when Train was last clicked (ms since the epoch): the first step's wait is timed from it

const post = (type, data = {}) => postMessage({ type, ...data });
const fail = (e) => post('error', { message: String(e && e.message || e) });

async function start() {
  await init();
  DEFAULTS = JSON.parse(defaults());
  if (!navigator.gpu) {
    post('no-webgpu', { reason: 'navigator.gpu is missing: this browser does not offer WebGPU here.' });
    return;
  }
  try {
    session = await openSession();
  } catch (e) {
    post('no-webgpu', { reason: `WebGPU is present but gave no usable GPU adapter (${e}).` });
    return;
  }
  const saved = await db('get', 'latest').catch(() => null);
  post('ready', { adapter: await adapterName(session.adapter()), software: session.is_software(), limits: JSON.parse(session.limits()),
                  tuning: JSON.parse(session.tuning()),
                  presets: JSON.parse(presets()), defaults: DEFAULTS, saved: saved ? { step: saved.step, steps: saved.steps } : null });
  // First in the queue, so it runs before any model is built (only then can its winners apply).
  // On a later visit (the choice kept) it only compiles the default run's pipelines.
  queue = queue.then(timeKernels);
}

// The page is ready at once with the kernels it has (a kept choice, or on a first visit on this
// adapter the defaults). The session first compiles the default run's pipelines with them, so
// that Train's first step need not; on a first visit it then times the candidates while the
// visitor reads the page (seconds on a software GPU, most of it compiling) and compiles the
// default run's pipelines again with the winners. Any command for the GPU stops the trial at
// its next candidate; a finished trial's choice is used from then on and kept for the next
// visit.
async function timeKernels() {
  if (JSON.parse(session.tuning()).pending) post('timing-kernels');
  try {
    const t = await session.time_kernels();
    if (t === null) { post('tuning', { tuning: JSON.parse(session.tuning()) }); return; }
    const tuning = JSON.parse(t);
    await db('put', 'tuning', tuning).catch(() => {});
    post('tuning', { tuning });
  } catch (e) {
    fail(`the kernel trial stopped: ${e}`);
    await recover();
  }
}

// Commands run one at a time, in order (the session serves one GPU operation at a time);
// pause and reset act at once, so they can stop a running training loop.
// A plan needs no GPU and is answered at once, even while the kernel trial runs; any other
// command stops the trial (see timeKernels).
let queue = Promise.resolve();
onmessage = ({ data: m }) => {
  if (m.cmd === 'plan') { handle(m); return; }
  if (m.cmd === 'pause' || m.cmd === 'reset') paused = true;
  // Timed from the click (the page's clock, as ms since the epoch), not from this message's
  // turn: the wait for a compile or a trial that was running counts.
  if (m.cmd === 'train') trainPressed = m.pressedAt;
  session?.stop_trial();
  queue = queue.then(() => handle(m));
};

async function handle(m) {
  try {
    switch (m.cmd) {
      case 'plan': post('plan', { plan: JSON.parse(session.plan(JSON.stringify(m.config))) }); break;
      case 'train': {
        corpus = m.text || default_corpus();
        settings = m.config;
        const info = JSON.parse(session.start(corpus, JSON.stringify(m.config)));
        post('started', { info, shape: JSON.parse(session.shape()), builtin: !m.text });
        paused = false;
        await loop();
        break;
      }
      case 'pause': break;
      case 'resume': paused = false; post('resumed'); await loop(); break;
      case 'reset': post('reset'); break;
      case 'resume-saved': {
        const saved = await db('get', 'latest');
        corpus = saved.text;
        settings = saved.settings;
        const info = JSON.parse(session.load(saved.bytes, corpus));
        post('started', { info, shape: JSON.parse(session.shape()), resumed: true });
        paused = false;
        await loop();
        break;
      }
      case 'upload': {
        corpus = m.text || corpus || default_corpus();
        const info = JSON.parse(session.load(new Uint8Array(m.bytes), corpus));
        settings = { ...(settings || {}), steps: info.steps };
        post('started', { info, shape: JSON.parse(session.shape()), resumed: true });
        paused = true;
        post('paused', { step: info.step });
        break;
      }
      case 'inspect-model': {
        chosenModel = { names: m.names, contents: m.buffers.map((b) => new Uint8Array(b)) };
        post('model-info', { info: JSON.parse(session.inspect_model(chosenModel.names, chosenModel.contents, JSON.stringify(m.config))) });
        break;
      }
      case 'open-model': {
        if (!chosenModel) throw new Error('choose a model folder or its files first');
        corpus = m.text || default_corpus();
        settings = m.config;
        const info = JSON.parse(session.open_model(chosenModel.names, chosenModel.contents, corpus, JSON.stringify(m.config)));
        chosenModel = null; // the model is on the GPU now; let the bytes go
        post('started', { info, shape: JSON.parse(session.shape()), resumed: true, opened: true });
        if (info.trainable) { paused = true; post('paused', { step: info.step }); } else { post('opened-for-sampling', { why: info.why }); }
        break;
      }
      case 'download': {
        const bytes = await session.checkpoint();
        // The loss reported with the file is kiln eval's: over the corpus, or its last 64 KB.
        const evalText = corpus.length <= 65536 ? corpus : corpus.slice(-65536);
        post('checkpoint', { bytes, note: corpus.length <= 65536 ? 'on the whole corpus' : 'on the last 64 KB of the corpus' });
        const loss = await session.text_loss(evalText);
        post('checkpoint-loss', { loss });
        break;
      }
      case 'sample': {
        post('sample-start');
        const text = await session.sample(m.prompt, m.tokens, m.temperature, m.topK, m.topP, m.seed,
                                          (piece) => post('token', { piece }));
        post('sampled', { text });
        break;
      }
      // The views report their own trouble (a prompt the model cannot read, say) beside
      // themselves, not as the page's status.
      case 'attention':
        try { post('attention', { data: JSON.parse(await session.attention(m.prompt)) }); } catch (e) { post('view-error', { message: String(e) }); }
        break;
      case 'next':
        try { post('next', { data: JSON.parse(await session.next_tokens(m.prompt, 10)) }); } catch (e) { post('view-error', { message: String(e) }); }
        break;
      case 'profile': {
        const p = await session.profile();
        post('profile', { data: p === null ? null : JSON.parse(p) });
        break;
      }
      default:
        if (m.cmd.startsWith('ft-')) await finetuneCommand(session, m, post);
    }
  } catch (e) { fail(e); }
}

// Trains until done or paused: a few steps per call, posting progress after each call.
async function loop() {
  const chunk = session.is_software() ? 1 : 10;
  let t0 = performance.now();
  try {
    for (;;) {
      if (paused) { post('paused'); break; }
      const r = JSON.parse(await session.train(chunk));
      const t1 = performance.now();
      const tps = (chunk * r.tokens_per_step) / ((t1 - t0) / 1000);
      t0 = t1;
      // Seconds from Train to the end of the first step (model built, pipelines compiled).
      const firstStep = trainPressed === null ? null : (performance.timeOrigin + t1 - trainPressed) / 1000;
      trainPressed = null;
      post('step', { step: r.step, loss: r.loss, skipped: r.skipped, lr: r.lr, tps, done: r.done, steps: settings.steps, firstStep });
      if (r.diverged) throw r.diverged; // shown as the status; the saved run is offered again
      const at = (every) => every > 0 && r.step % every === 0;
      if (at(settings.evalEvery) || r.done) {
        post('eval', { step: r.step, val: await session.evaluate() });
        await save(r.step);
      }
      if (at(settings.sampleEvery) || r.done) {
        let text = '';
        const s = DEFAULTS.sample;
        await session.sample('\n', s.tokens, s.temperature, s.top_k, s.top_p, r.step, (p) => { text += p; });
        post('train-sample', { step: r.step, text });
      }
      if (at(settings.evalEvery) || at(settings.sampleEvery)) t0 = performance.now();
      if (r.done) { post('done', { step: r.step }); break; }
    }
  } catch (e) {
    fail(`training stopped: ${e}`);
    await recover();
  }
}

// A session on the GPU, with the kernel variants a timed trial chose for this adapter on an
// earlier visit (kept in IndexedDB beside the checkpoints), else the defaults (see timeKernels).
async function openSession() {
  const kept = await db('get', 'tuning').catch(() => null);
  return Session.create(kept ? JSON.stringify(kept) : undefined);
}

// After a failure (a lost GPU device, say): a fresh device, and the saved run offered again.
async function recover() {
  try {
    session = await openSession();
    post('tuning', { tuning: JSON.parse(session.tuning()) }); // a new device: its kernels may differ
    const saved = await db('get', 'latest').catch(() => null);
    post('recovered', { saved: saved ? { step: saved.step, steps: saved.steps } : null });
  } catch (e) {
    post('error', { message: `the GPU is gone (${e}): reload the page to resume from the last checkpoint kept in this browser` });
  }
}

async function save(step) {
  try {
    const bytes = await session.checkpoint();
    await db('put', 'latest', { bytes, text: corpus, settings, step, steps: settings.steps });
  } catch (e) { /* quota or private mode: training goes on without a saved copy */ }
}

// Browsers hide the adapter's name from wgpu; GPUAdapterInfo still says what it is.
async function adapterName(fallback) {
  try {
    const info = (await navigator.gpu.requestAdapter()).info;
    const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ');
    return name ? `${name} ${fallback.replace(/^[^(]*/, '')}` : fallback;
  } catch (e) { return fallback; }
}

// A one-store IndexedDB: db('get', key) and db('put', key, value). A checkpoint is one record
// written in one transaction, so it switches whole: a reload or crash mid-write aborts the
// transaction and leaves the previous record as it was. A put resolves only when its
// transaction has committed ('strict': flushed to disk where the browser offers that).
function db(op, key, value) {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open('kiln', 1);
    open.onupgradeneeded = () => open.result.createObjectStore('checkpoints');
    open.onerror = () => reject(open.error);
    open.onsuccess = () => {
      const write = op !== 'get';
      const tx = open.result.transaction('checkpoints', write ? 'readwrite' : 'readonly', { durability: 'strict' });
      const store = tx.objectStore('checkpoints');
      const req = write ? store.put(value, key) : store.get(key);
      if (write) tx.oncomplete = () => resolve();
      else req.onsuccess = () => resolve(req.result);
      tx.onabort = () => reject(tx.error || new Error('the write was aborted'));
      req.onerror = () => reject(req.error);
    };
  });
}

start().catch(fail);
