/**
 * Serving: examples/serve.mjs (load once, predict per request) under load on loopback, with
 * Classifier.predict's batching (default maxBatch) against a one-at-a-time queue (maxBatch 1):
 * 200 requests of one 32x32x3 image, 20 in flight, on a CIFAR resnet20 (the default run's model,
 * initial weights). Also the forward cost per image by batch size, which is what sets maxBatch.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Dataset, DEFAULT_MAX_BATCH, Model, saveCheckpoint } from '../src/index.js';
import { noiseTask } from '../src/data/synthetic.js';
import { median, ROOT } from './common.js';

const META = { arch: 'resnet20', numClasses: 10, inChannels: 3, imageSize: 32, normalize: { mean: [0.49, 0.48, 0.45], std: [0.25, 0.24, 0.26] } } as const;

export interface LoadResult {
  maxBatch: number;
  requests: number;
  concurrency: number;
  ok: number;
  reqPerS: number;
  p50: number;
  p99: number;
}

export interface ServeResult {
  forward: { batch: number; msPerImage: number; ms: number }[];
  batching: LoadResult;
  oneAtATime: LoadResult;
  defaultMaxBatch: number;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

/** Starts examples/serve.mjs on a free port; resolves with the process and its port. */
async function startServer(ckpt: string, maxBatch: number, threads: number): Promise<{ proc: ChildProcess; port: number }> {
  const proc = spawn(process.execPath, [join(ROOT, 'examples/serve.mjs'), ckpt, '0'], {
    env: { ...process.env, BTM_MAX_BATCH: String(maxBatch), BTM_NUM_THREADS: String(threads) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: proc.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`examples/serve.mjs exited with code ${code} before listening`)));
    lines.on('line', (line) => {
      const m = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
      if (m) resolve(Number(m[1]));
    });
  });
  return { proc, port };
}

function post(agent: Agent, port: number, body: Uint8Array): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path: '/predict', method: 'POST', agent, headers: { 'content-length': body.length } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** `requests` POSTs of one image each, `concurrency` in flight; latency per request. */
async function load(port: number, requests: number, concurrency: number): Promise<{ seconds: number; latencies: number[]; ok: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const images = noiseTask({ n: 64, size: 32, channels: 3, numClasses: 10, seed: 4 }).images;
  const image = (i: number) => images.subarray((i % 64) * 3072, (i % 64 + 1) * 3072);
  const latencies: number[] = [];
  let next = 0;
  let ok = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < requests) {
      const i = next++;
      const t = performance.now();
      const r = await post(agent, port, image(i));
      latencies.push(performance.now() - t);
      if (r.status === 200 && JSON.parse(r.body).preds?.length === 1) ok++;
    }
  }));
  const seconds = (performance.now() - t0) / 1000;
  agent.destroy();
  return { seconds, latencies, ok };
}

async function serveRun(ckpt: string, maxBatch: number, threads: number, requests: number, concurrency: number): Promise<LoadResult> {
  const { proc, port } = await startServer(ckpt, maxBatch, threads);
  try {
    await load(port, 2 * concurrency, concurrency); // warm-up
    const r = await load(port, requests, concurrency);
    return { maxBatch, requests, concurrency, ok: r.ok, reqPerS: requests / r.seconds, p50: percentile(r.latencies, 50), p99: percentile(r.latencies, 99) };
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
  }
}

/** Milliseconds of one eval forward of `batch` images (median of timed runs), in this process. */
async function forwardCost(model: Model, batch: number, quick: boolean): Promise<number> {
  const set = noiseTask({ n: batch, size: 32, channels: 3, numClasses: 10, seed: batch });
  using data = new Dataset(set);
  const opts = { batchSize: batch, normalize: META.normalize };
  await model.evaluate(data, opts);
  const times: number[] = [];
  const reps = quick ? 3 : Math.max(5, Math.round(64 / batch));
  for (let i = 0; i < reps; i++) {
    const t = performance.now();
    await model.evaluate(data, opts);
    times.push(performance.now() - t);
  }
  return median(times);
}

export async function serveBench(o: { quick: boolean; threads: number; log: (s: string) => void }): Promise<ServeResult> {
  const dist = join(ROOT, 'dist/index.js');
  if (!existsSync(dist) || statSync(dist).mtimeMs < statSync(join(ROOT, 'src/classifier.ts')).mtimeMs) {
    throw new Error(`serve: examples/serve.mjs imports ${dist}, which is missing or older than src/: run \`npm run build:ts\` first`);
  }
  const dir = mkdtempSync(join(tmpdir(), 'btm-serve-bench-'));
  try {
    const ckpt = join(dir, 'resnet20.safetensors');
    using model = new Model({ arch: 'resnet20', numClasses: 10, inChannels: 3, seed: 0 });
    await saveCheckpoint(ckpt, model, { ...META, normalize: { mean: [...META.normalize.mean], std: [...META.normalize.std] } });
    const forward = [];
    for (const batch of [1, 2, 4, 8, 16, 32, 64, 128]) {
      const ms = await forwardCost(model, batch, o.quick);
      forward.push({ batch, ms, msPerImage: ms / batch });
      o.log(`serve: forward of ${batch} image(s) ${ms.toFixed(1)} ms (${(ms / batch).toFixed(2)} ms/image)`);
    }
    const requests = 200;
    const concurrency = 20;
    o.log(`serve: ${requests} requests, ${concurrency} concurrent, maxBatch ${DEFAULT_MAX_BATCH} (batching)`);
    const batching = await serveRun(ckpt, DEFAULT_MAX_BATCH, o.threads, requests, concurrency);
    o.log(`serve: ${requests} requests, ${concurrency} concurrent, maxBatch 1 (one at a time)`);
    const oneAtATime = await serveRun(ckpt, 1, o.threads, requests, concurrency);
    return { forward, batching, oneAtATime, defaultMaxBatch: DEFAULT_MAX_BATCH };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
