// The page's Fine-tune tab: choose a task, score the model in the tab zero-shot and few-shot,
// fine-tune it in place, score it again; the scores side by side, a few examples with what the
// model answered before and after, and how far each part of its weights moved. The GPU work is
// the worker's (web/finetune-worker.js); this file sends commands and draws what comes back,
// always as text (task files are the visitor's own), never as HTML.

import { el } from './dom.js';

const $ = (id) => document.getElementById(id);
const pct = (x) => `${(100 * x).toFixed(1)}%`;


/**
 * Wires the tab. `send(cmd, data)` posts to the worker; `lock(on, label)` tells the Train tab
 * the GPU is the Fine-tune tab's (label: the header's status while fine-tuning, and after it).
 * Returns the hooks app.js calls: ready(defaults), trainState(state), newModel(info), onMessage(m).
 */
export function finetuneTab({ send, lock }) {
  // results: {zero, few, tuned}: each a score_task result; shots: K of the few-shot column.
  const ft = { defaults: null, model: null, free: false, task: null, reading: false, busy: null, tuned: false, results: {}, shots: 0 };

  function setStatus(state, text) {
    const s = $('ft-status');
    s.dataset.state = state;
    s.className = state === 'error' ? 'plan bad' : 'plan';
    s.textContent = text;
  }

  function buttons() {
    const can = ft.model && ft.free && ft.task && !ft.busy;
    $('ft-score-before').disabled = !can || ft.tuned;
    $('ft-train').disabled = !can;
    $('ft-score-after').disabled = !can || !ft.tuned;
    $('ft-model').textContent = !ft.model ? 'No model yet: train one in the Train tab, or open one there.'
      : `The model in the tab: ${ft.model}. Fine-tuning changes it in place: Sample, Look inside and Download then use the fine-tuned model.` +
        (ft.tuned ? ' It is fine-tuned now.' : '') + (ft.free ? '' : ' (Busy in the Train tab: pause or let it finish.)');
  }

  function run(cmd, data, busy) {
    ft.busy = busy;
    buttons();
    lock(true, cmd === 'ft-train' ? `fine-tuning on ${ft.task.name}` : null);
    send(cmd, data);
  }

  function finish(state, text, label) {
    ft.busy = null;
    lock(false, label);
    setStatus(state, text);
    buttons();
  }

  const chooseTask = (data) => {
    ft.task = null; ft.reading = true; ft.results = {}; draw();
    $('ft-task-info').className = 'plan'; $('ft-task-info').textContent = 'reading the task…';
    buttons();
    send('ft-task', data);
  };

  $('ft-task').onchange = (e) => {
    const v = e.target.value;
    $('ft-files').hidden = v !== 'file';
    if (v && v !== 'file') chooseTask({ builtin: v });
  };
  const readFiles = async () => {
    const [train, test] = [$('ft-train-file').files[0], $('ft-test-file').files[0]];
    if (!train) return;
    chooseTask({ trainName: train.name, train: await train.text(), testName: test ? test.name : '', test: test ? await test.text() : '' });
  };
  $('ft-train-file').onchange = readFiles;
  $('ft-test-file').onchange = readFiles;

  const limit = () => Number($('ft-limit').value);
  $('ft-score-before').onclick = () => {
    ft.shots = Number($('ft-shots').value);
    ft.results = {}; draw();
    run('ft-score', { columns: [{ column: 'zero', shots: 0 }, { column: 'few', shots: ft.shots }], limit: limit() }, 'before');
  };
  $('ft-score-after').onclick = () => run('ft-score', { columns: [{ column: 'tuned', shots: 0 }], limit: limit() }, 'after');
  $('ft-train').onclick = () => {
    const config = { steps: Number($('ft-steps').value), batch: Number($('ft-batch').value), lr: Number($('ft-lr').value),
                     method: $('ft-method').value, rank: Number($('ft-rank').value) };
    // The answer loss is measured before and after, and as often as `kiln finetune` does between.
    const evalEvery = ft.defaults.run.eval_every;
    delete ft.results.tuned; draw();
    for (const id of ['ft-step', 'ft-loss', 'ft-val-before', 'ft-val', 'ft-tps']) $(id).textContent = '–';
    $('ft-changes').replaceChildren();
    run('ft-train', { config, evalEvery }, 'train');
  };

  // The scores side by side, then the first examples with each column's answer.
  function draw() {
    const cols = [['zero', 'zero-shot'], ['few', `${ft.shots}-shot`], ['tuned', 'fine-tuned (zero-shot)']];
    const shown = cols.filter(([c]) => ft.results[c]);
    const table = $('ft-scores'), ex = $('ft-examples');
    if (!shown.length) { table.replaceChildren(); ex.replaceChildren(); return; }
    const any = ft.results[shown[0][0]];
    const metric = any.score.metric === 'accuracy' ? 'accuracy' : 'exact match';
    const row = (label, f, testid) => el('tr', {}, el('th', {}, label),
      ...cols.map(([c]) => { const r = ft.results[c]; return el('td', r && testid ? { class: 'n', 'data-testid': `${testid}-${c}`, 'data-value': f(r, true) } : { class: 'n' }, r ? f(r) : '–'); }));
    table.replaceChildren(...[
      el('tr', {}, el('th', {}, ''), ...cols.map(([, label]) => el('th', {}, label))),
      row(metric, (r, raw) => raw ? r.score.score : pct(r.score.score), 'ft-score'),
      row('95% interval', (r) => `${pct(r.score.ci95[0])} to ${pct(r.score.ci95[1])}`),
      row('examples', (r) => r.score.count, 'ft-count'),
      any.score.f1 !== undefined ? row('word-overlap F1', (r) => pct(r.score.f1)) : null,
      row(`prompts cut to fit the model's ${any.block} positions`, (r) => r.score.truncated_examples),
    ].filter(Boolean));
    ex.replaceChildren(el('tr', {}, el('th', {}, 'prompt'), el('th', {}, 'right answer'), ...cols.map(([, l]) => el('th', {}, l))),
      ...any.examples.map((e, i) => el('tr', { 'data-testid': 'ft-example' },
        promptCell(e.prompt, (ft.results.zero || ft.results.tuned)?.examples[i]?.seen), el('td', {}, JSON.stringify(e.answer)),
        ...cols.map(([c]) => {
          const a = ft.results[c]?.examples[i];
          return a ? el('td', { class: a.correct ? 'right' : 'wrong', 'data-testid': `ft-said-${c}` }, `${a.correct ? '✓' : '✗'} ${JSON.stringify(a.said)}`) : el('td', {}, '–');
        }))));
  }

  // The prompt, with the start the model never saw (cut to fit its context) faded.
  function promptCell(prompt, seen) {
    const show = (s) => s.replace(/\n/g, ' ⏎ ');
    const cut = typeof seen === 'string' && prompt.endsWith(seen) ? prompt.length - seen.length : 0;
    return el('td', { class: 'prompt' }, cut ? el('span', { class: 'cut', title: 'cut to fit the context' }, show(prompt.slice(0, cut))) : null,
      show(prompt.slice(cut)));
  }

  function drawChanges(rows, why) {
    const box = $('ft-changes');
    if (!rows) { box.replaceChildren(el('p', { class: 'note' }, why)); return; }
    const top = Math.max(...rows.map((r) => r.change), 1e-12);
    box.replaceChildren(...rows.map((r) => el('div', { class: 'bar', 'data-testid': 'ft-change' },
      el('span', { class: 'part' }, r.part), el('i', { style: `width:${Math.round(260 * r.change / top)}px` }), pct(r.change))));
  }

  const readout = (id, x, digits = 4) => { $(id).textContent = x === null || x === undefined || Number.isNaN(x) ? '–' : x.toFixed(digits); };

  return {
    ready(defaults) {
      const d = defaults.finetune;
      ft.defaults = d;
      $('ft-shots').value = d.shots;
      $('ft-limit').value = d.test_examples;
      $('ft-steps').value = d.train.steps;
      $('ft-batch').value = d.train.batch_size;
      $('ft-lr').value = d.train.lr;
      $('ft-rank').value = d.lora_rank;
      buttons();
    },
    // The Train tab's state: a model is there to score once a run is paused or done.
    trainState(state) {
      if (state !== 'fine-tuning') { ft.free = ['paused', 'done'].includes(state); buttons(); }
    },
    newModel(info) {
      ft.model = info ? `${(info.params / 1e6).toFixed(2)}M parameters, ${info.layers} layers, vocabulary ${info.vocab}` : null;
      ft.tuned = false; ft.results = {}; draw(); buttons();
    },
    onMessage(m) {
      switch (m.type) {
        case 'ft-task': {
          const i = m.info;
          ft.task = i; ft.reading = false;
          $('ft-task-info').className = 'plan';
          $('ft-task-info').textContent = `${i.name}: ${i.train} training and ${i.test} test examples` +
            (i.held_out ? ' (a tenth of the file held out)' : '') +
            (i.kind === 'choice' ? `, multiple choice (up to ${i.choices} choices), scored by accuracy` : ', open answers, scored by exact match');
          buttons();
          break;
        }
        case 'ft-progress':
          $('ft-bar').value = m.done / m.total;
          setStatus('busy', `scoring ${m.column === 'few' ? `${ft.shots}-shot` : m.column === 'zero' ? 'zero-shot' : 'the fine-tuned model'}: example ${m.done} of ${m.total}`);
          break;
        case 'ft-score': ft.results[m.column] = m.result; draw(); break;
        case 'ft-scored':
          finish(ft.busy === 'after' ? 'scored-after' : 'scored-before',
            ft.busy === 'after' ? 'scored after fine-tuning: compare the columns below' : 'scored: now fine-tune the model');
          break;
        case 'ft-started': {
          const i = m.info;
          ft.tuned = true; // from here on the model in the tab is changing
          setStatus('busy', `fine-tuning on ${i.rows} examples (${i.val_rows} held out): batch ${i.batch} x ${i.seq_len} positions, ` +
            `${i.steps} steps at learning rate ${+i.lr.toPrecision(4)}` + (i.truncated ? `; ${i.truncated} prompts lose their start to fit` : ''));
          break;
        }
        case 'ft-step':
          $('ft-bar').value = m.step / m.steps;
          $('ft-step').textContent = `${m.step} / ${m.steps}`;
          if (m.loss !== null && m.loss !== undefined) readout('ft-loss', m.loss);
          $('ft-tps').textContent = Math.round(m.tps).toLocaleString('en-US');
          break;
        case 'ft-eval':
          readout(m.step === 0 ? 'ft-val-before' : 'ft-val', m.val);
          if (m.step === 0) readout('ft-val', m.val);
          break;
        case 'ft-changes': drawChanges(m.rows, m.why); break;
        case 'ft-done':
          ft.tuned = true;
          finish('tuned', `fine-tuned on ${m.task}: the answer loss went from ${$('ft-val-before').textContent} to ${$('ft-val').textContent}; now score it again`,
            `fine-tuned on ${m.task}`);
          break;
        case 'ft-error':
          if (ft.reading) { // a task that would not read: its one-line error, beside the task
            ft.reading = false;
            $('ft-task-info').className = 'plan bad';
            $('ft-task-info').textContent = m.message;
            buttons();
            break;
          }
          finish('error', m.message, ft.busy === 'train' ? 'fine-tuning stopped' : null); break;
      }
    },
  };
}

// The two tabs: the Train tab (main#app) and this one (main#finetune).
for (const [tab, panel, other, otherPanel] of [['tab-train', 'app', 'tab-finetune', 'finetune'], ['tab-finetune', 'finetune', 'tab-train', 'app']]) {
  $(tab).onclick = () => {
    $(panel).hidden = false; $(otherPanel).hidden = true;
    $(tab).setAttribute('aria-selected', 'true'); $(other).setAttribute('aria-selected', 'false');
  };
}
