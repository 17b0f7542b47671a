#!/usr/bin/env node
// Evaluation throughput of one architecture (images/s, median of 5 timed passes after a warm-up),
// plain or with BatchNorm folded into the convolutions, NCHW or channels-last.
// Usage: node scripts/eval-throughput.mjs [arch=resnet32] [batch=256] [size=32] [channels=3] [--fold] [--channels-last]
// Needs the build (npm run build).
import { Dataset, Model, getNumThreads, gridTask } from '../dist/index.js';

const known = ['--fold', '--channels-last'];
const flags = process.argv.slice(2).filter((a) => a.startsWith('--'));
const unknown = flags.filter((f) => !known.includes(f));
if (unknown.length) throw new Error(`eval-throughput: unknown flag(s) ${unknown.join(', ')} (known: ${known.join(', ')})`);
const fold = flags.includes('--fold'), channelsLast = flags.includes('--channels-last');
const [arch = 'resnet32', batch = '256', size = '32', channels = '3'] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const bs = Number(batch), n = Math.max(bs * 4, 1024);
const data = new Dataset(gridTask({ n, numClasses: 10, size: Number(size), channels: Number(channels) }));
const model = new Model({ arch, numClasses: 10, inChannels: Number(channels) });
if (channelsLast) model.setPerformance({ channelsLast: true });
const opts = { batchSize: bs, foldBatchNorm: fold, normalize: { mean: Array(Number(channels)).fill(0.5), std: Array(Number(channels)).fill(0.25) } };
await model.evaluate(data, opts);
const rates = [];
for (let r = 0; r < 5; r++) {
  const t = performance.now();
  await model.evaluate(data, opts);
  rates.push(n / ((performance.now() - t) / 1000));
}
rates.sort((a, b) => a - b);
const mode = `${fold ? 'folded' : 'unfolded'} ${channelsLast ? 'channels-last' : 'NCHW'}`;
console.log(`eval ${arch} ${size}x${size}x${channels} batch ${bs} ${mode}, ${getNumThreads()} threads: ${rates[2].toFixed(0)} img/s (median of 5; min ${rates[0].toFixed(0)}, max ${rates[4].toFixed(0)})`);
model.dispose();
data.dispose();
