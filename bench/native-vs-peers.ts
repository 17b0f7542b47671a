/**
 * Train-step and evaluation throughput (images/s) of one CIFAR ResNet on identical workloads: btm-node
 * native (CPU, and CUDA when present), PyTorch eager (bench/torch_peer.py, same libtorch, same thread
 * count) and TensorFlow.js's pure-JS CPU backend (bench/tfjs-resnet.ts, single-threaded JS).
 */
import { cudaAvailable, Dataset, Model, type Arch, type PerformanceOptions, type TrainOptions } from '../src/index.js';
import { alternate, median, randomImages, shuffled, timeRuns, TorchServer, wallSeconds, type Case, type Timed } from './common.js';

export const ARCH: Arch = 'resnet20';
export const CLASSES = 10;
/** The same per-channel normalisation in every runner (the work, not the values, is what matters). */
export const normalizeFor = (channels: number) => ({ mean: Array(channels).fill(0.5), std: Array(channels).fill(0.25) });

export type Mode = 'train' | 'eval';
export const SHAPES = [{ channels: 1, size: 28 }, { channels: 3, size: 32 }] as const;
export const BATCHES = [8, 128] as const;

/** Batches per timed run, so a run takes ~0.5 s on 2 cores (eval is ~4x faster than train). */
function stepsFor(mode: Mode, batch: number): number {
  return (batch >= 128 ? 4 : 48) * (mode === 'eval' ? 3 : 1);
}

export function cases(mode: Mode, quick: boolean): Case[] {
  return SHAPES.flatMap(({ channels, size }) =>
    BATCHES.map((batch) => ({
      arch: ARCH, channels, size, batch, classes: CLASSES,
      steps: stepsFor(mode, batch), warmup: quick ? 1 : 2, reps: quick ? 3 : 7,
    })));
}

export const caseLabel = (c: Pick<Case, 'channels' | 'size' | 'batch'>) => `${c.size}x${c.size}x${c.channels} b${c.batch}`;

/** A native model and dataset for `c`; `run()` is one timed run: one trainEpoch / evaluate call over `steps` batches. */
export function nativeRunner(c: Case, mode: Mode, device: 'cpu' | 'cuda' = 'cpu', extra: Partial<TrainOptions> = {}, perf?: PerformanceOptions) {
  const n = c.batch * c.steps;
  const data = new Dataset(randomImages(n, c.channels, c.size, c.classes), device);
  const model = new Model({ arch: c.arch as Arch, numClasses: c.classes, inChannels: c.channels, device, seed: 0 });
  model.setOptimizer({ momentum: 0.9, weightDecay: 5e-4 });
  if (perf) model.setPerformance(perf);
  const indices = shuffled(n);
  const normalize = normalizeFor(c.channels);
  const run = mode === 'train'
    ? () => model.trainEpoch(data, indices, { lr: 0.01, batchSize: c.batch, normalize, ...extra })
    : () => model.evaluate(data, { indices, batchSize: c.batch, normalize });
  return { run, [Symbol.dispose]: () => (model.dispose(), data.dispose()) };
}

/** Native images/s on `device` (median of `reps` runs after `warmup`). */
export async function nativeRate(c: Case, mode: Mode, device: 'cpu' | 'cuda' = 'cpu', extra: Partial<TrainOptions> = {}): Promise<Timed> {
  using r = nativeRunner(c, mode, device, extra);
  return await timeRuns(c, c.batch * c.steps, r.run); // await: the model must outlive the runs
}

/** Native and PyTorch runs alternated one by one; the ratio reported is the median of the per-pair ratios. */
async function sideBySide(c: Case, mode: Mode, server: TorchServer | undefined): Promise<{ native: Timed; torch?: Timed; paired?: number[] }> {
  using native = nativeRunner(c, mode);
  const id = `${mode} ${caseLabel(c)}`;
  const fns = [wallSeconds(native.run)];
  if (server) {
    await server.ask({ op: 'prepare', id, mode, case: { ...c, warmup: 0 } });
    fns.push(async () => (await server.ask({ op: 'run', id })).seconds);
  }
  const [ours, theirs] = (await alternate(fns, c.warmup, c.reps)).map((secs) => secs.map((s) => (c.batch * c.steps) / s));
  await server?.ask({ op: 'close', id });
  const timed = (rates: number[]): Timed => ({ rates, median: median(rates) });
  return { native: timed(ours), torch: theirs && timed(theirs), paired: theirs && ours.map((x, i) => x / theirs[i]) };
}

/** tfjs images/s: a few single-batch runs (a batch-8 train step takes ~30 s); the first run is profiled. */
async function tfjsRate(c: Case, mode: Mode, timedRuns: number) {
  const { tfjsBench } = await import('./tfjs-resnet.js');
  const d = randomImages(c.batch, c.channels, c.size, c.classes);
  const bench = await tfjsBench(c, d.images, d.labels);
  const batch = [shuffled(c.batch)];
  try {
    const run = async () => (mode === 'train' ? bench.train(batch) : bench.evaluate(batch));
    const t = performance.now();
    const kernels = await bench.profile(run); // doubles as the warm-up run
    const profiled = c.batch / ((performance.now() - t) / 1000);
    const timed = timedRuns > 0 ? await timeRuns({ warmup: 0, reps: timedRuns }, c.batch, run) : { rates: [profiled], median: profiled };
    return { ...timed, timedRuns, backend: bench.backend, version: bench.version, kernels };
  } finally {
    bench.dispose();
  }
}

export interface ThroughputResult {
  mode: Mode;
  case: Case;
  native: Timed;
  cuda?: Timed;
  torch?: Timed;
  /** native/torch rate of each pair of adjacent runs: robust to the machine's drift. */
  paired?: number[];
  tfjs?: Awaited<ReturnType<typeof tfjsRate>> | { skipped: string };
}

/**
 * Which tfjs cases run: the JS backend needs ~30 s per batch-8 train step on this class of machine,
 * so train runs at batch 8 only (batch 128 would take ~8 min a step) and quick mode keeps one shape.
 */
function tfjsPlan(mode: Mode, c: Case, quick: boolean): { runs: number } | { skipped: string } {
  if (quick && (c.channels !== 1 || c.batch !== 8)) return { skipped: 'quick mode: tfjs runs 28x28x1 b8 only' };
  if (mode === 'train' && c.batch > 8) return { skipped: 'not run: one tfjs train step at this batch takes minutes' };
  return { runs: quick ? (mode === 'train' ? 0 : 3) : 2 };
}

export async function throughput(opts: { quick: boolean; threads: number; tfjs: boolean; log: (s: string) => void }) {
  const { quick, threads, log } = opts;
  const cuda = cudaAvailable();
  const server = await TorchServer.start(threads);
  const peer = server instanceof TorchServer ? server : undefined;
  const results: ThroughputResult[] = [];
  try {
    for (const mode of ['train', 'eval'] as const) {
      for (const c of cases(mode, quick)) {
        log(`native ${peer ? '+ torch ' : ''}${mode} ${caseLabel(c)}`);
        const r: ThroughputResult = { mode, case: c, ...(await sideBySide(c, mode, peer)) };
        if (cuda) r.cuda = await nativeRate(c, mode, 'cuda');
        if (opts.tfjs) {
          const plan = tfjsPlan(mode, c, quick);
          if ('skipped' in plan) r.tfjs = plan;
          else {
            log(`tfjs ${mode} ${caseLabel(c)} (slow)`);
            r.tfjs = await tfjsRate(c, mode, plan.runs);
          }
        }
        results.push(r);
      }
    }
  } finally {
    peer?.close();
  }
  return { results, torch: peer ? peer.info : (server as { unavailable: string }) };
}
