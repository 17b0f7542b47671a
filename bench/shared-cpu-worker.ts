/**
 * One btm-node process of the shared-CPU bench: trains resnet20 (batch 32, 28x28x1) in calls of 2
 * steps for `seconds` after a 2 s warm-up and prints its images/s and the thread count it ended with,
 * as JSON. The thread policy comes from the environment (default adaptive; BTM_NUM_THREADS fixes it).
 */
import { getNumThreads, threadsAdaptive } from '../src/device.js';
import { Dataset } from '../src/dataset.js';
import { Model } from '../src/model.js';
import { randomImages } from './common.js';

const seconds = Number(process.argv[2] ?? 8);
const data = new Dataset(randomImages(256, 1, 28, 10, 1));
const model = new Model({ arch: 'resnet20', numClasses: 10, inChannels: 1, seed: 1 });
model.setOptimizer({ momentum: 0.9, weightDecay: 5e-4 });
const order = Int32Array.from({ length: 64 }, (_, i) => i);
const opts = { lr: 0.01, batchSize: 32 };
const start = performance.now();
let t0 = 0, images = 0;
const threadsSeen = new Set<number>();
while (performance.now() - start < (seconds + 2) * 1000) {
  await model.trainEpoch(data, order, opts);
  threadsSeen.add(getNumThreads());
  if (!t0 && performance.now() - start >= 2000) t0 = performance.now();
  else if (t0) images += order.length;
}
console.log(JSON.stringify({ imagesPerSec: images / ((performance.now() - t0) / 1000), threads: [...threadsSeen].sort(), adaptive: threadsAdaptive() }));
model.dispose();
data.dispose();
