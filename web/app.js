// Kiln's page: controls, readouts, the loss chart and the teaching views. All GPU work happens
// in web/worker.js; this file only sends commands and draws what comes back.

import { finetuneTab } from './finetune.js';
import { el, options } from './dom.js';

const $ = (id) => document.getElementById(id);
const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
const send = (cmd, data = {}) => worker.postMessage({ cmd, ...data });
const ui = { presets: [], history: { train: [], val: [] }, started: 0, firstLoss: null, steps: 0, layers: 0, heads: 0 };
const fields = ['layers', 'heads', 'embd', 'block', 'batch', 'steps', 'lr'];

function status(state, text) {
  const el = document.querySelector('[data-testid=status]');
  el.dataset.state = state;
  el.textContent = text;
}

function buttons(state) {
  if (state !== 'fine-tuning') ui.trainState = state;
  ft.trainState(state);
  const trained = ['training', 'paused', 'done'].includes(state);
  $('train').disabled = !['ready', 'done', 'paused', 'error'].includes(state);
  $('pause').disabled = !['training', 'paused'].includes(state);
  $('pause').textContent = state === 'paused' ? 'Resume' : 'Pause';
  $('reset').disabled = !trained;
  for (const id of ['download', 'generate', 'show-attention', 'show-next', 'show-profile']) $(id).disabled = !trained || state === 'training';
}

// While the Fine-tune tab uses the GPU this tab's buttons wait; after fine-tuning, the run here
// is the fine-tuned model (done: sample it, look inside, download it; Train starts afresh).
function lock(on, label) {
  if (on) { buttons('fine-tuning'); if (label) status('training', label); return; }
  buttons(label ? 'done' : ui.trainState);
  if (label) status('done', label);
}
const ft = finetuneTab({ send, lock });

// The settings sent with Train: the inputs, and the run settings from the core's defaults
// (ui.defaults), scaled down for the short runs a page makes.
function config() {
  const c = Object.fromEntries(fields.map((f) => [f, Number($(f).value)]));
  const text = $('corpus').value, d = ui.defaults;
  c.vocab = text ? new Set(text).size : 76;
  c.warmup = Math.min(d.train.warmup, Math.floor(c.steps / 10));
  c.evalEvery = Math.min(d.run.eval_every, Math.max(5, Math.ceil(c.steps / 4)));
  c.sampleEvery = Math.min(d.run.sample_every, Math.max(10, Math.ceil(c.steps / 2)));
  c.eval_batches = d.run.eval_batches;
  c.val_fraction = d.run.val_fraction;
  return c;
}

function applyPreset(name) {
  const p = ui.presets.find((x) => x.name === name);
  if (!p) return;
  for (const f of ['layers', 'heads', 'embd', 'block', 'batch']) $(f).value = p[f];
  plan();
}

function plan() { if (ui.ready) send('plan', { config: config() }); }

// The kernel variants in use, in the adapter name's tooltip; `data-tuning` says how they were
// chosen ("pending": the defaults while the first trial on this adapter runs, "timed": that
// trial's winners, "kept": an earlier visit's) and `data-trial` holds the trial's times.
function showTuning(t) {
  const el = document.querySelector('[data-testid=adapter-name]');
  const how = t.timed ? 'timed' : t.pending ? 'pending' : 'kept';
  el.title = `matmul kernel ${t.matmul} (small products ${t.matmul_small}, large ${t.matmul_large}), layernorm ${t.norm}, attention ${t.attention_rows} rows an invocation, ` +
    (t.split_k === 'off' ? 'no product split over K' : `products of fewer than ${t.split_k} workgroups split over K`) +
    (t.epilogue === 'tested' ? ', epilogue tested at run time' : ', epilogue compiled in') +
    { timed: ' (timed trial just now)', pending: ' (defaults: the first trial on this GPU has not finished)', kept: ' (chosen by an earlier trial)' }[how];
  el.dataset.tuning = how;
  el.dataset.trial = JSON.stringify(t.trial_ms ?? null);
}

worker.onmessage = ({ data: m }) => {
  if (m.type.startsWith('ft-')) { ft.onMessage(m); return; }
  switch (m.type) {
    case 'ready': {
      ui.ready = true;
      ui.presets = m.presets;
      ui.defaults = m.defaults;
      $('steps').value = m.defaults.train.steps;
      $('lr').value = m.defaults.train.lr;
      $('temperature').value = m.defaults.sample.temperature;
      $('topk').value = m.defaults.sample.top_k;
      $('topp').value = m.defaults.sample.top_p;
      $('length').value = m.defaults.sample.tokens;
      document.querySelector('[data-testid=adapter-name]').textContent = m.adapter + (m.software ? ' (software fallback: slow)' : '');
      showTuning(m.tuning);
      $('preset').replaceChildren(...options(m.presets.map((p) => p.name)));
      $('preset').value = m.defaults.preset;
      applyPreset(m.defaults.preset);
      ft.ready(m.defaults);
      if (m.saved) { $('resume-saved').hidden = false; $('resume-saved').textContent = `Resume saved run (step ${m.saved.step} of ${m.saved.steps})`; }
      status('ready', 'ready');
      buttons('ready');
      break;
    }
    case 'timing-kernels': $('tuning-note').hidden = false; break;
    case 'tuning': $('tuning-note').hidden = true; showTuning(m.tuning); break;
    case 'no-webgpu':
      $('no-webgpu').hidden = false;
      $('app').hidden = true;
      $('tabs').hidden = true;
      $('no-webgpu-reason').textContent = m.reason;
      document.querySelector('[data-testid=adapter-name]').textContent = 'none';
      status('no-webgpu', 'no WebGPU in this browser');
      break;
    case 'plan': {
      const p = m.plan, el = $('plan');
      el.className = p.fits ? 'plan' : 'plan bad';
      el.textContent = `${(p.params / 1e6).toFixed(2)}M parameters, about ${Math.ceil(p.bytes / 2 ** 20)} MiB of GPU memory` +
        (p.fits ? '' : ` — will not fit: ${p.reason}`);
      $('train').disabled = !p.fits;
      break;
    }
    case 'started':
      ui.history = m.resumed && !m.opened ? ui.history : { train: [], val: [] };
      ui.started = performance.now();
      ui.startStep = m.info.step;
      ui.steps = m.info.steps;
      ui.layers = m.info.layers;
      ui.heads = m.info.heads;
      $('att-layer').replaceChildren(...options([...Array(ui.layers).keys()]));
      $('att-head').replaceChildren(...options([...Array(ui.heads).keys()]));
      $('shape').replaceChildren(
        el('tr', {}, el('th', {}, 'part'), el('th', {}, 'shape'), el('th', {}, 'parameters')),
        ...m.shape.rows.map((r) => el('tr', {}, el('td', {}, r.part), el('td', {}, r.shape), el('td', { class: 'n' }, r.params.toLocaleString()))),
        el('tr', {}, el('th', {}, 'total'), el('th'), el('th', { class: 'n' }, m.shape.total.toLocaleString())));
      $('step').textContent = `${m.info.step} / ${m.info.steps}`;
      $('bar').value = m.info.step / m.info.steps;
      ft.newModel(m.info);
      status('training', m.opened ? 'model opened' : m.resumed ? `training (resumed at step ${m.info.step})` : 'training');
      buttons('training');
      break;
    case 'model-info': {
      const i = m.info, el = $('model-info');
      el.className = i.can_sample ? 'plan' : 'plan bad';
      el.textContent = `GPT-2 with ${i.layers} layers, ${i.heads} heads, ${i.embd} channels, vocabulary ${i.vocab}, ` +
        `${i.positions} positions: ${(i.params / 1e6).toFixed(2)}M parameters. Sampling needs about ${i.sample_mib} MiB of GPU ` +
        `memory; training at batch ${i.batch} x block ${i.block} about ${i.train_mib} MiB` +
        (!i.can_sample ? ` — will not fit: ${i.reason}` : !i.can_train ? ` — too large to train here (${i.reason}): it opens for sampling only` : '.');
      $('open-model').disabled = !i.can_sample;
      break;
    }
    case 'opened-for-sampling':
      status('done', 'model opened for sampling only'); buttons('done');
      $('model-info').textContent += ` Opened for sampling only: ${m.why}`;
      break;
    case 'step': {
      $('step').textContent = `${m.step} / ${m.steps}`;
      $('bar').value = m.step / m.steps;
      if (m.loss !== null && m.loss !== undefined) {
        if (ui.firstLoss === null) { ui.firstLoss = m.loss; $('loss').dataset.first = m.loss.toFixed(4); }
        $('loss').textContent = m.loss.toFixed(4);
        ui.history.train.push([m.step, m.loss]);
      }
      $('tps').textContent = Math.round(m.tps).toLocaleString('en-US').replace(/,/g, ' ');
      if (m.firstStep !== null && m.firstStep !== undefined) $('first-step').textContent = `${m.firstStep.toFixed(1)} s`;
      // Steps whose loss or gradient norm was not finite: their updates were skipped.
      $('skipped').hidden = !m.skipped;
      $('skipped').textContent = m.skipped ? `${m.skipped} step${m.skipped === 1 ? '' : 's'} skipped (loss not finite)` : '';
      const done = m.step - ui.startStep, rate = (performance.now() - ui.started) / 1000 / Math.max(1, done);
      $('eta').textContent = duration(rate * (m.steps - m.step));
      chart();
      break;
    }
    case 'eval': $('val').textContent = m.val.toFixed(4); ui.history.val.push([m.step, m.val]); chart(); break;
    case 'train-sample': $('sample').textContent = `step ${m.step}:\n${m.text}`; break;
    case 'paused': status('paused', 'paused'); buttons('paused'); break;
    case 'resumed': status('training', 'training'); buttons('training'); break;
    case 'view-error': $('next').replaceChildren(el('p', { class: 'note' }, m.message)); break;
    case 'done':
      status('done', `done: ${m.step} steps`); buttons('done'); $('eta').textContent = '0s';
      // Fill the teaching views for the default prompt, so they are there to point at.
      send('attention', { prompt: $('prompt').value });
      send('next', { prompt: $('prompt').value });
      send('profile');
      break;
    case 'reset':
      ft.newModel(null);
      ui.history = { train: [], val: [] }; ui.firstLoss = null; chart();
      for (const id of ['loss', 'val', 'tps', 'eta', 'first-step']) $(id).textContent = '–';
      $('step').textContent = '0'; $('bar').value = 0; $('sample').textContent = '';
      status('ready', 'ready'); buttons('ready');
      break;
    case 'checkpoint': {
      const url = URL.createObjectURL(new Blob([m.bytes], { type: 'application/octet-stream' }));
      const a = Object.assign(document.createElement('a'), { href: url, download: 'kiln-checkpoint.kiln' });
      document.body.append(a); a.click(); a.remove();
      $('ckpt-loss').textContent = 'computing…'; $('ckpt-note').textContent = m.note;
      break;
    }
    case 'checkpoint-loss': $('ckpt-loss').textContent = m.loss.toFixed(4); $('ckpt-loss').dataset.value = m.loss; break;
    case 'sample-start': $('generated').textContent = $('prompt').value; break;
    case 'token': $('generated').textContent += m.piece; break;
    case 'attention': drawAttention(m.data); break;
    case 'next': drawNext(m.data); break;
    case 'profile': drawProfile(m.data); break;
    case 'error': status('error', m.message); buttons(ui.steps ? 'paused' : 'ready'); break;
    case 'recovered':
      // Keep the error on show; offer the last checkpoint kept in this browser.
      if (m.saved) { $('resume-saved').hidden = false; $('resume-saved').textContent = `Resume from the last checkpoint (step ${m.saved.step} of ${m.saved.steps})`; }
      buttons('error');
      break;
  }
};

function duration(s) {
  if (!isFinite(s)) return '–';
  return s >= 3600 ? `${(s / 3600).toFixed(1)}h` : s >= 60 ? `${Math.floor(s / 60)}m ${Math.round(s % 60)}s` : `${Math.round(s)}s`;
}

// The loss chart: training (thin, blue) and validation (thick, orange, with points).
function chart() {
  const cv = $('chart'), g = cv.getContext('2d'), W = cv.width, H = cv.height, L = 56, R = 16, T = 16, B = 34;
  g.clearRect(0, 0, W, H);
  const pts = [...ui.history.train, ...ui.history.val];
  g.font = '14px system-ui'; g.fillStyle = '#5a6475';
  if (!pts.length) { g.fillText('the loss appears here as the model trains', L, H / 2); return; }
  const xmax = Math.max(ui.steps, ...pts.map((p) => p[0]));
  let lo = Math.min(...pts.map((p) => p[1])), hi = Math.max(...pts.map((p) => p[1]));
  const pad = Math.max(0.05, (hi - lo) * 0.08); lo -= pad; hi += pad;
  const x = (s) => L + (s / xmax) * (W - L - R), y = (v) => T + ((hi - v) / (hi - lo)) * (H - T - B);
  g.strokeStyle = '#e5e8ee'; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = lo + ((hi - lo) * i) / 4;
    g.beginPath(); g.moveTo(L, y(v)); g.lineTo(W - R, y(v)); g.stroke();
    g.fillText(v.toFixed(2), 8, y(v) + 5);
  }
  g.fillText('0', L, H - 10); g.fillText(`step ${xmax}`, W - R - 80, H - 10);
  const line = (series, color, width) => {
    g.strokeStyle = color; g.lineWidth = width; g.beginPath();
    series.forEach(([s, v], i) => (i ? g.lineTo(x(s), y(v)) : g.moveTo(x(s), y(v))));
    g.stroke();
  };
  line(ui.history.train, '#1f77b4', 1.5);
  line(ui.history.val, '#ff7f0e', 3);
  g.fillStyle = '#ff7f0e';
  for (const [s, v] of ui.history.val) { g.beginPath(); g.arc(x(s), y(v), 4, 0, 7); g.fill(); }
  g.fillStyle = '#1f77b4'; g.fillText('training', W - 190, T + 14);
  g.fillStyle = '#ff7f0e'; g.fillText('validation', W - 110, T + 14);
}

// Heat map of one head's attention: darker = more attention.
function drawAttention(d) {
  const cv = $('attention'), g = cv.getContext('2d'), n = d.tokens.length;
  const rows = d.layers[Number($('att-layer').value)][Number($('att-head').value)];
  const M = 40, cell = (cv.width - M) / n;
  g.clearRect(0, 0, cv.width, cv.height);
  g.font = `${Math.min(14, cell)}px ui-monospace, monospace`; g.textAlign = 'center';
  rows.forEach((row, t) => row.forEach((p, t2) => {
    g.fillStyle = `rgba(194, 65, 12, ${Math.sqrt(p)})`;
    g.fillRect(M + t2 * cell, M + t * cell, cell - 1, cell - 1);
  }));
  g.fillStyle = '#1d2330';
  d.tokens.forEach((tok, i) => {
    const s = JSON.stringify(tok).slice(1, -1);
    g.fillText(s, M + (i + 0.5) * cell, M - 8);
    g.fillText(s, M / 2, M + (i + 0.7) * cell);
  });
}

function drawNext(list) {
  const top = list[0] ? list[0].p : 1;
  $('next').replaceChildren(el('b', {}, 'Most likely next tokens'), ...list.map((c) =>
    el('div', { class: 'bar' }, el('code', {}, JSON.stringify(c.token)), el('i', { style: `width:${Math.round(260 * c.p / top)}px` }), `${(100 * c.p).toFixed(1)}%`)));
}

function drawProfile(list) {
  $('profile').replaceChildren(...(list === null
    ? [el('tr', {}, el('td', {}, 'This browser offers no timestamp queries, so per-kernel GPU time is not available.'))]
    : [el('tr', {}, el('th', {}, 'kernel'), el('th', {}, 'ms per step (AdamW not run)'), el('th', {}, 'launches')),
      ...list.map((k) => el('tr', {}, el('td', {}, k.kernel), el('td', { class: 'n' }, k.ms.toFixed(3)), el('td', { class: 'n' }, k.launches)))]));
}


$('preset').onchange = (e) => applyPreset(e.target.value);
for (const f of fields) $(f).onchange = plan;
$('corpus').onchange = plan;
$('corpus-file').onchange = async (e) => { const f = e.target.files[0]; if (f) { $('corpus').value = await f.text(); plan(); } };
// pressedAt (ms since the epoch, comparable across the page and its worker): the first step's
// wait is timed from the click, whatever the worker was busy with when it came.
$('train').onclick = () => {
  ui.firstLoss = null; delete $('loss').dataset.first;
  send('train', { text: $('corpus').value, config: config(), pressedAt: performance.timeOrigin + performance.now() });
};
$('pause').onclick = () => send($('pause').textContent === 'Pause' ? 'pause' : 'resume');
$('reset').onclick = () => send('reset');
$('resume-saved').onclick = () => { $('resume-saved').hidden = true; send('resume-saved'); };
$('download').onclick = () => send('download');
$('upload').onchange = async (e) => { const f = e.target.files[0]; if (f) send('upload', { bytes: await f.arrayBuffer(), text: $('corpus').value }); };
$('generate').onclick = () => send('sample', { prompt: $('prompt').value, tokens: Number($('length').value),
  temperature: Number($('temperature').value), topK: Number($('topk').value), topP: Number($('topp').value), seed: Date.now() % 1e9 });
$('show-attention').onclick = () => send('attention', { prompt: $('prompt').value });
$('att-layer').onchange = $('att-head').onchange = () => send('attention', { prompt: $('prompt').value });
$('show-next').onclick = () => send('next', { prompt: $('prompt').value });
$('show-profile').onclick = () => send('profile');
// "Open model": the files of a Hugging Face GPT-2 folder, picked or dropped. The worker reads
// their config first (shape and memory shown here), and loads them on "Open model".
const MODEL_FILES = /(^|\/)(config\.json|tokenizer\.json|vocab\.json|merges\.txt|[^/]*\.safetensors|model\.safetensors\.index\.json|[^/]*\.(bin|pt|pth))$/;
async function chooseModel(files) {
  const chosen = [...files].filter((f) => MODEL_FILES.test(f.webkitRelativePath || f.name));
  if (!chosen.length) { $('model-info').className = 'plan bad'; $('model-info').textContent = 'none of these files belong to a GPT-2 folder (config.json, model.safetensors, tokenizer files)'; return; }
  $('model-info').className = 'plan'; $('model-info').textContent = `reading ${chosen.length} files…`;
  const buffers = await Promise.all(chosen.map((f) => f.arrayBuffer()));
  send('inspect-model', { names: chosen.map((f) => f.name), buffers, config: config() });
}
// A dropped folder arrives as entries: walk it (one level of subfolders is plenty for a model).
async function droppedFiles(items) {
  const out = [];
  const walk = async (entry) => {
    if (entry.isFile) out.push(await new Promise((ok, fail) => entry.file(ok, fail)));
    else if (entry.isDirectory) {
      const entries = await new Promise((ok, fail) => entry.createReader().readEntries(ok, fail));
      for (const e of entries) await walk(e);
    }
  };
  for (const item of items) { const e = item.webkitGetAsEntry && item.webkitGetAsEntry(); if (e) await walk(e); }
  return out;
}
$('model-files').onchange = (e) => chooseModel(e.target.files);
$('model-folder').onchange = (e) => chooseModel(e.target.files);
$('model-drop').ondragover = (e) => { e.preventDefault(); $('model-drop').classList.add('over'); };
$('model-drop').ondragleave = () => $('model-drop').classList.remove('over');
$('model-drop').ondrop = async (e) => {
  e.preventDefault(); $('model-drop').classList.remove('over');
  chooseModel(await droppedFiles([...e.dataTransfer.items]));
};
$('open-model').onclick = () => {
  $('open-model').disabled = true; ui.firstLoss = null; delete $('loss').dataset.first;
  send('open-model', { text: $('corpus').value, config: config() });
};
chart();
