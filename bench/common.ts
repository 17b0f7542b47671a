/** Shared pieces of the benchmark: the addon path, timing, synthetic data, the Python peer. */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { buildInfo } from '../src/index.js';
import type { DatasetSource } from '../src/index.js';

/** The repository root (this file runs from build/bench/bench/). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/**
 * src/native.ts finds the addon relative to its own file, which is build/bench/src/ here, so point it
 * at the source build unless the caller already chose one. Retries a failed load a few times: the
 * addon may be being rebuilt under us.
 */
export async function loadAddon(): Promise<ReturnType<typeof buildInfo>> {
  const built = `${ROOT}build/Release/btm_node.node`;
  if (!process.env.BTM_NODE_ADDON && existsSync(built)) process.env.BTM_NODE_ADDON = built;
  for (let attempt = 1; ; attempt++) {
    try {
      return buildInfo();
    } catch (e) {
      if (attempt >= 5) throw e;
      await new Promise((r) => setTimeout(r, 3000));
    }
  }
}

/** One throughput workload: `steps` batches of `batch` images make one timed run. */
export interface Case {
  arch: string;
  channels: number;
  size: number;
  batch: number;
  steps: number;
  warmup: number;
  reps: number;
  classes: number;
}

export interface Timed {
  rates: number[];
  median: number;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Images/s of each timed run (after `warmup` untimed runs) and their median. */
export async function timeRuns(c: Pick<Case, 'warmup' | 'reps'>, images: number, run: () => Promise<unknown>): Promise<Timed> {
  for (let i = 0; i < c.warmup; i++) await run();
  const rates: number[] = [];
  for (let i = 0; i < c.reps; i++) {
    const t = performance.now();
    await run();
    rates.push(images / ((performance.now() - t) / 1000));
  }
  return { rates, median: median(rates) };
}

/** Seconds one call of `f` takes. */
export function wallSeconds(f: () => Promise<unknown>): () => Promise<number> {
  return async () => {
    const t = performance.now();
    await f();
    return (performance.now() - t) / 1000;
  };
}

/**
 * Runs the timed functions in turn, `warmup` untimed rounds then `reps` timed ones, so that all of
 * them see the same machine (a shared VM drifts by tens of percent over minutes); the order flips
 * every round, since the run that comes second measured up to ~4% faster here. Seconds per run, one
 * array per function.
 */
export async function alternate(fns: (() => Promise<number>)[], warmup: number, reps: number): Promise<number[][]> {
  const out = fns.map(() => [] as number[]);
  for (let round = 0; round < warmup + reps; round++) {
    const order = fns.map((_, i) => i);
    if (round % 2) order.reverse(); // A B, B A, ...: no function always runs first
    for (const i of order) {
      const s = await fns[i]();
      if (round >= warmup) out[i].push(s);
    }
  }
  return out;
}

/** xorshift32: deterministic pixels and orders without pulling in the library's samplers. */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 0x9e3779b9;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

/** Uniform random uint8 NCHW images and labels. */
export function randomImages(n: number, channels: number, size: number, classes: number, seed = 1): DatasetSource {
  const r = rng(seed);
  const images = new Uint8Array(n * channels * size * size);
  for (let i = 0; i < images.length; i++) images[i] = (r() * 256) | 0;
  const labels = Int32Array.from({ length: n }, () => (r() * classes) | 0);
  return { images, labels, n, channels, height: size, width: size };
}

/** A random permutation of 0..n-1. */
export function shuffled(n: number, seed = 2): Int32Array {
  const r = rng(seed);
  const a = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = (r() * (i + 1)) | 0;
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** Debian's python3-torch lives at /usr/bin/python3 (the python3 on PATH may lack torch). */
export const PYTHON = process.env.BTM_PYTHON ?? '/usr/bin/python3';

const PEER_SCRIPT = `${ROOT}bench/torch_peer.py`;

function peerFailure(stderr: string): string {
  if (/No module named 'torch'/.test(stderr)) return `no Python torch at ${PYTHON} (set BTM_PYTHON)`;
  return `torch_peer.py failed: ${stderr.trim().split('\n').pop() ?? ''}`;
}

/** Runs bench/torch_peer.py with a JSON request; the parsed reply, or the reason it is unavailable. */
export function torchPeer(request: object, timeoutS = 600): { ok: true; out: any } | { ok: false; why: string } {
  const r = spawnSync(PYTHON, [PEER_SCRIPT], {
    input: JSON.stringify(request), encoding: 'utf8', timeout: timeoutS * 1000, maxBuffer: 1 << 26,
  });
  if (r.error) return { ok: false, why: `${PYTHON}: ${r.error.message}` };
  if (r.status !== 0) return { ok: false, why: peerFailure(r.stderr ?? '') };
  return { ok: true, out: JSON.parse(r.stdout) };
}

/** A long-lived `torch_peer.py --serve`: runs one timed PyTorch run at a time, between native ones. */
export class TorchServer {
  private stderr = '';
  private readonly lines: AsyncIterator<string>;
  info: { torch: string; threads: number } = { torch: '?', threads: 0 };

  private constructor(private readonly proc: ReturnType<typeof spawn>) {
    proc.stderr!.on('data', (d) => (this.stderr += d));
    proc.on('error', (e) => (this.stderr += `${PYTHON}: ${e.message}\n`));
    this.lines = createInterface({ input: proc.stdout! })[Symbol.asyncIterator]();
  }

  static async start(threads: number): Promise<TorchServer | { unavailable: string }> {
    const server = new TorchServer(spawn(PYTHON, [PEER_SCRIPT, '--serve'], { stdio: ['pipe', 'pipe', 'pipe'] }));
    try {
      server.info = await server.ask({ op: 'hello', threads });
      return server;
    } catch {
      return { unavailable: peerFailure(server.stderr) };
    }
  }

  async ask(request: object): Promise<any> {
    this.proc.stdin!.write(`${JSON.stringify(request)}\n`);
    const { value, done } = await this.lines.next();
    if (done) throw new Error(peerFailure(this.stderr));
    return JSON.parse(value);
  }

  close(): void {
    this.proc.stdin!.end();
  }
}

/** Numbers for the table: integers from 100 up, 3 significant digits below, '-' for none. */
export function fmt(x: number | null | undefined): string {
  if (x == null || !Number.isFinite(x)) return '-';
  const a = Math.abs(x);
  if (a >= 100) return x.toFixed(0);
  if (a === 0 || a >= 0.001) return String(Number(x.toPrecision(3)));
  return x.toExponential(1);
}
