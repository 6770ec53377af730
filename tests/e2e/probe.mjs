// Standalone probe: does headless Chromium with a given set of flags give the page a WebGPU
// adapter, and how long does a small compute dispatch take there? Not a test; run by hand:
//   node tests/e2e/probe.mjs [extra chromium flags...]
// Prints the adapter info as JSON (or why there is none) and the dispatch timings.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';

const base = ['--no-sandbox', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--no-first-run'];
const extra = process.argv.length > 2 ? process.argv.slice(2) : ['--enable-unsafe-webgpu'];
const server = createServer((_, res) => res.end('<!doctype html><title>probe</title>'));
const userDataDir = mkdtempSync(join(tmpdir(), 'kiln-probe-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true, args: [...base, ...extra],
});
try {
  // navigator.gpu exists only in a secure context; about:blank and data: URLs may not count as
  // one, so the probe serves an empty page from 127.0.0.1 (which does), as `kiln serve` will.
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const page = await context.newPage();
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  console.error(`secure context: ${await page.evaluate(() => isSecureContext)}`);
  page.on('console', (m) => console.error(`[console.${m.type()}] ${m.text()}`));
  const t0 = Date.now();
  const result = await page.evaluate(async () => {
    if (!navigator.gpu) return { error: 'navigator.gpu is undefined' };
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) return { error: 'requestAdapter() returned null' };
    const i = adapter.info;
    const info = { vendor: i.vendor, architecture: i.architecture, device: i.device, description: i.description };
    const limits = { maxStorageBuffersPerShaderStage: adapter.limits.maxStorageBuffersPerShaderStage,
      maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
      maxBufferSize: adapter.limits.maxBufferSize };
    const features = [...adapter.features].sort();
    // One small dispatch: y[i] = x[i] * 2 over 1M floats, then read back; timed cold and warm.
    const device = await adapter.requestDevice();
    const n = 1 << 20;
    const module = device.createShaderModule({ code: `
      @group(0) @binding(0) var<storage, read> x: array<f32>;
      @group(0) @binding(1) var<storage, read_write> y: array<f32>;
      @compute @workgroup_size(256) fn main(@builtin(global_invocation_id) g: vec3u) {
        if (g.x < arrayLength(&x)) { y[g.x] = x[g.x] * 2.0; } }` });
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    const x = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE, mappedAtCreation: true });
    new Float32Array(x.getMappedRange()).fill(1.5); x.unmap();
    const y = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
    const r = device.createBuffer({ size: n * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const bind = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: x } }, { binding: 1, resource: { buffer: y } }] });
    const times = [];
    let last = 0;
    for (let k = 0; k < 3; k++) {
      const t = performance.now();
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline); pass.setBindGroup(0, bind); pass.dispatchWorkgroups(n / 256); pass.end();
      enc.copyBufferToBuffer(y, 0, r, 0, n * 4);
      device.queue.submit([enc.finish()]);
      await r.mapAsync(GPUMapMode.READ);
      last = new Float32Array(r.getMappedRange())[n - 1];
      r.unmap();
      times.push(Math.round(performance.now() - t));
    }
    return { info, limits, features, dispatchMs: times, check: last };
  });
  const evaluateMs = Date.now() - t0;
  // The page trains in a dedicated worker (web/worker.js): check WebGPU is there too.
  const worker = await page.evaluate(() => new Promise((ok) => {
    const src = 'navigator.gpu ? navigator.gpu.requestAdapter().then((a) => postMessage(a ? a.info.architecture : "no adapter")) : postMessage("no navigator.gpu")';
    new Worker(URL.createObjectURL(new Blob([src], { type: 'text/javascript' }))).onmessage = (e) => ok(e.data);
  }));
  console.log(JSON.stringify({ flags: extra, ...result, evaluateMs, worker }, null, 2));
} finally {
  await context.close();
  server.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
