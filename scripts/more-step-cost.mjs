#!/usr/bin/env node
// Cost of a MORE training step against a plain one: images/s of the same model, data and batches,
// plain / factors without the rebalancing term / MORE / MORE without gradients through the general
// path, interleaved (rounds x variants) so that a change in machine load hits all of them alike.
// Usage: node scripts/more-step-cost.mjs [arch=resnet20] [batch=128] [size=28] [rank=8] [rounds=3]
import { Dataset, Model, getNumThreads, gridTask } from '../dist/index.js';

const [arch = 'resnet20', batch = '128', size = '28', rank = '8', rounds = '3'] = process.argv.slice(2);
const bs = Number(batch), n = bs * 6;
const data = new Dataset(gridTask({ n, numClasses: 10, size: Number(size), channels: 1 }));
const order = Int32Array.from({ length: n }, (_, i) => i);
const weights = Array(10).fill(1);
const variants = {
  plain: { lowRank: false },
  'factors, no term': { lowRank: true },
  MORE: { lowRank: true, more: { coefficient: 1, classWeights: weights } },
  'MORE, generalGrad false': { lowRank: true, more: { coefficient: 1, classWeights: weights, generalGrad: false } },
};
const models = Object.fromEntries(Object.entries(variants).map(([name, v]) => {
  const m = new Model({ arch, numClasses: 10, inChannels: 1 });
  m.setOptimizer({ momentum: 0.9, weightDecay: 5e-4 });
  if (v.lowRank) m.setLowRank({ rank: Number(rank) });
  return [name, m];
}));
const rates = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
for (let r = -1; r < Number(rounds); r++) {
  for (const [name, v] of Object.entries(variants)) {
    const t = performance.now();
    await models[name].trainEpoch(data, order, { lr: 0.01, batchSize: bs, more: v.more });
    if (r >= 0) rates[name].push(n / ((performance.now() - t) / 1000));  // round -1 warms up
  }
}
const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const base = median(rates.plain);
console.log(`${arch} ${size}x${size}x1 batch ${bs}, rank ${rank}, ${getNumThreads()} threads, median of ${rounds}:`);
for (const k of Object.keys(variants)) console.log(`  ${k.padEnd(24)} ${median(rates[k]).toFixed(0).padStart(6)} img/s  (${(base / median(rates[k])).toFixed(2)}x the plain step's time)`);
