// The Fine-tune tab's half of the worker (web/worker.js passes its `ft-` commands here): reads a
// task, scores the model on it, fine-tunes the model in place. Errors go back as `ft-error`, shown
// in the tab, so the Train tab's state is left alone.
// In: ft-task {builtin | trainName, train, testName, test}, ft-score {columns: [{column, shots}],
// limit}, ft-train {config, evalEvery}. Out: ft-task, ft-progress, ft-score, ft-started, ft-step,
// ft-eval, ft-changes, ft-done, ft-error.

// A built-in task's part, from the page's own server (tasks/ beside index.html).
async function fetchPart(name, part) {
  const url = new URL(`../tasks/${encodeURIComponent(name)}/${part}.jsonl`, import.meta.url);
  const r = await fetch(url);
  if (!r.ok) throw new Error(`cannot fetch ${url.pathname} (HTTP ${r.status}): serve the page from the repository root`);
  return r.text();
}

export async function finetuneCommand(session, m, post) {
  try {
    switch (m.cmd) {
      case 'ft-task': {
        let { trainName, train, testName = '', test = '' } = m;
        if (m.builtin) {
          [train, test] = await Promise.all([fetchPart(m.builtin, 'train'), fetchPart(m.builtin, 'test')]);
          [trainName, testName] = [`tasks/${m.builtin}/train.jsonl`, `tasks/${m.builtin}/test.jsonl`];
        }
        const info = JSON.parse(session.set_task(m.builtin || trainName, trainName, train, testName, test));
        post('ft-task', { info });
        break;
      }
      case 'ft-score':
        for (const { column, shots } of m.columns) {
          const progress = (done, total) => post('ft-progress', { column, done, total });
          const result = JSON.parse(await session.score_task(shots, m.limit, progress));
          post('ft-score', { column, result });
        }
        post('ft-scored');
        break;
      case 'ft-train': {
        const info = JSON.parse(await session.finetune(JSON.stringify(m.config)));
        post('ft-started', { info });
        post('ft-eval', { step: 0, val: await session.evaluate() });
        // One step per call on a software adapter, so progress shows; ten on a GPU.
        const chunk = session.is_software() ? 1 : 10;
        let t0 = performance.now();
        for (;;) {
          const r = JSON.parse(await session.train(chunk));
          const t1 = performance.now();
          post('ft-step', { step: r.step, steps: info.steps, loss: r.loss, tps: (chunk * r.tokens_per_step) / ((t1 - t0) / 1000) });
          if (r.diverged) throw r.diverged;
          if (r.done || r.step % m.evalEvery === 0) post('ft-eval', { step: r.step, val: await session.evaluate() });
          t0 = performance.now();
          if (r.done) break;
        }
        try {
          post('ft-changes', { rows: JSON.parse(await session.weight_changes()) });
        } catch (e) {
          post('ft-changes', { rows: null, why: String(e && e.message || e) });
        }
        post('ft-done', { task: info.task });
        break;
      }
    }
  } catch (e) {
    post('ft-error', { message: String(e && e.message || e) });
  }
}
