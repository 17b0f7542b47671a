#!/usr/bin/env node
// Train-step throughput of one architecture (images/s, median of 5 timed epochs after a warm-up).
// Usage: node scripts/train-throughput.mjs [arch=resnet32] [batch=128] [size=32] [channels=3] [--channels-last]
// Needs the build (npm run build). The full comparison with PyTorch and tfjs is `npm run bench`.
import { Dataset, Model, getNumThreads, gridTask } from '../dist/index.js';

const flags = process.argv.slice(2).filter((a) => a.startsWith('--'));
const unknown = flags.filter((f) => f !== '--channels-last');
if (unknown.length) throw new Error(`train-throughput: unknown flag(s) ${unknown.join(', ')} (known: --channels-last)`);
const channelsLast = flags.includes('--channels-last');
const [arch = 'resnet32', batch = '128', size = '32', channels = '3'] = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const bs = Number(batch), n = bs * 8;
const data = new Dataset(gridTask({ n, numClasses: 10, size: Number(size), channels: Number(channels) }));
const model = new Model({ arch, numClasses: 10, inChannels: Number(channels) });
model.setOptimizer({ momentum: 0.9, weightDecay: 5e-4 });
if (channelsLast) model.setPerformance({ channelsLast: true });
const order = Int32Array.from({ length: n }, (_, i) => i);
const opts = { lr: 0.01, batchSize: bs, normalize: { mean: Array(Number(channels)).fill(0.5), std: Array(Number(channels)).fill(0.25) } };
await model.trainEpoch(data, order, opts);
const rates = [];
for (let r = 0; r < 5; r++) {
  const t = performance.now();
  await model.trainEpoch(data, order, opts);
  rates.push(n / ((performance.now() - t) / 1000));
}
rates.sort((a, b) => a - b);
const layout = channelsLast ? 'channels-last' : 'NCHW';
console.log(`${arch} ${size}x${size}x${channels} batch ${bs} ${layout}, ${getNumThreads()} threads: ${rates[2].toFixed(0)} img/s (median of 5; min ${rates[0].toFixed(0)}, max ${rates[4].toFixed(0)})`);
model.dispose();
data.dispose();
