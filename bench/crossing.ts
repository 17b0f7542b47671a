/**
 * The cost of crossing into native: microseconds per trainEpoch call on a tiny model (resnet8 on 8x8x1,
 * one batch of 2), against the same step in PyTorch eager; and event-loop lag while an epoch trains
 * off the JS thread, against an idle loop.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { Dataset, Model } from '../src/index.js';
import { median, randomImages, shuffled, timeRuns, torchPeer } from './common.js';
import { normalizeFor } from './native-vs-peers.js';

const TINY = { arch: 'resnet8', channels: 1, size: 8, batch: 2, steps: 1, classes: 2 } as const;
const STEPS_IN_CALL = 200;
const RESOLUTION_MS = 5;

/**
 * Native µs per awaited trainEpoch call of one step (median over blocks of calls), and µs per step
 * inside one call of STEPS_IN_CALL steps: the difference is the cost of the call itself.
 */
async function nativeMicros(calls: number): Promise<{ perCall: number; perStepInCall: number }> {
  const n = TINY.batch * STEPS_IN_CALL;
  using data = new Dataset(randomImages(n, TINY.channels, TINY.size, TINY.classes));
  using model = new Model({ arch: TINY.arch, numClasses: TINY.classes, inChannels: TINY.channels, seed: 0 });
  const one = Int32Array.of(0, 1);
  const all = shuffled(n);
  const opts = { lr: 0.01, batchSize: TINY.batch, normalize: normalizeFor(TINY.channels) };
  for (let i = 0; i < 50; i++) await model.trainEpoch(data, one, opts);
  const blocks: number[] = [];
  const perBlock = Math.ceil(calls / 5);
  for (let b = 0; b < 5; b++) {
    const t = performance.now();
    for (let i = 0; i < perBlock; i++) await model.trainEpoch(data, one, opts);
    blocks.push(((performance.now() - t) * 1000) / perBlock);
  }
  const long = await timeRuns({ warmup: 1, reps: 5 }, n, () => model.trainEpoch(data, all, opts));
  return { perCall: median(blocks), perStepInCall: (TINY.batch / long.median) * 1e6 };
}

/** Event-loop delay beyond the sampling interval, in ms, while `work` runs. */
async function lag(work: () => Promise<unknown>) {
  const h = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  const t = performance.now();
  h.enable();
  await work();
  h.disable();
  const ms = (ns: number) => Math.max(0, ns / 1e6 - RESOLUTION_MS);
  return { p50: ms(h.percentile(50)), p99: ms(h.percentile(99)), max: ms(h.max), seconds: (performance.now() - t) / 1000, samples: h.count };
}

export async function crossing(opts: { quick: boolean; threads: number; log: (s: string) => void }) {
  const calls = opts.quick ? 500 : 3000;
  opts.log(`crossing: ${calls} tiny trainEpoch calls`);
  const native = await nativeMicros(calls);
  const peer = torchPeer({
    threads: opts.threads,
    train: [{ ...TINY, warmup: 50, reps: calls }, { ...TINY, steps: STEPS_IN_CALL, warmup: 1, reps: 5 }],
  });
  const us = (i: number) => (peer.ok ? (TINY.batch / peer.out.train[i].median) * 1e6 : null);
  const torch = { perCall: us(0), perStepInCall: us(1) };

  // An epoch of ~3 s on 2 cores: resnet20, 28x28x1, batch 128.
  opts.log('crossing: event-loop lag during a ~3 s epoch');
  const n = 4096;
  using data = new Dataset(randomImages(n, 1, 28, 10));
  using model = new Model({ arch: 'resnet20', numClasses: 10, inChannels: 1, seed: 0 });
  const indices = shuffled(n);
  const training = await lag(() => model.trainEpoch(data, indices, { lr: 0.01, batchSize: 128, normalize: normalizeFor(1) }));
  const idle = await lag(() => sleep(1000 * Math.min(training.seconds, 1.5)));
  return { tiny: TINY, calls, stepsInCall: STEPS_IN_CALL, native, torch, torchUnavailable: peer.ok ? undefined : peer.why, resolutionMs: RESOLUTION_MS, training, idle };
}
