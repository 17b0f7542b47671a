/**
 * One rank of the distributed bench (bench/distributed.ts): `node distributed-rank.js JSON` with
 * {task: 'dp' | 'fanout', rank, worldSize, port, ...}; prints one JSON line (rank 0's timings).
 */
import { Dataset, Model, ProcessGroup, setNumThreads } from '../src/index.js';
import { randomImages, shuffled } from './common.js';
import { allreduceMerge } from '../src/distributed/merge.js';

const o = JSON.parse(process.argv[2]) as {
  task: 'dp' | 'fanout'; rank: number; worldSize: number; port: number; arch: string; size: number; channels: number;
  batch: number; steps: number; warmup: number; members: number; syncBatchNorm?: boolean;
};
setNumThreads(1);
const group = await ProcessGroup.init({ rank: o.rank, worldSize: o.worldSize, port: o.port, timeoutMs: 600_000 });
const n = Math.max(o.batch * (o.steps + o.warmup), 512);
const data = new Dataset(randomImages(n, o.channels, o.size, 10, 1));
const model = new Model({ arch: o.arch as never, numClasses: 10, inChannels: o.channels, seed: 1 });
model.setOptimizer({ momentum: 0.9 });
const order = shuffled(n, 2);
const result: Record<string, number> = {};

if (o.task === 'dp') {
  // as the pipeline trains: global batches, each rank its part; train-mode BatchNorm, synchronised
  // over the ranks unless syncBatchNorm is false
  model.setProcessGroup(group, { syncBatchNorm: o.syncBatchNorm ?? true });
  await model.broadcastFrom(group);
  const run = async (steps: number, offset: number) => {
    await model.trainEpoch(data, order.subarray(offset * o.batch, (offset + steps) * o.batch), { lr: 0.01, batchSize: o.batch, globalBatch: true });
  };
  await run(o.warmup, 0);
  await group.barrier();
  const t0 = performance.now();
  await run(o.steps, o.warmup);
  await group.barrier();
  const s = (performance.now() - t0) / 1000;
  result.imagesPerSec = (o.steps * o.batch) / s;
  result.stepMs = (s * 1000) / o.steps;
  // the gradient all-reduce alone: one flat float32 array of the model's size, as a step sends it
  const size = model.stateDict().filter((e) => e.dtype === 'float32' && !/running_/.test(e.name)).reduce((a, e) => a + e.data.length, 0);
  const grads = new Float32Array(size);
  for (let i = 0; i < 3; i++) await group.allreduce([grads]);
  const reps = 20;
  const t1 = performance.now();
  for (let i = 0; i < reps; i++) await group.allreduce([grads]);
  result.allreduceMs = (performance.now() - t1) / reps;
  result.parameters = size;
  // one SyncBatchNorm all-reduce's payload (the widest layer: 2 x 64 channels + 1, float64 = 258 floats),
  // sent from JS: an upper bound of the native call's latency
  const small = new Float32Array(258);
  for (let i = 0; i < 3; i++) await group.allreduce([small]);
  const t2 = performance.now();
  for (let i = 0; i < 5 * reps; i++) await group.allreduce([small]);
  result.smallAllreduceMs = (performance.now() - t2) / (5 * reps);
} else {
  // BTM fan-out: members k = rank, rank + W, ...; each fine-tunes `steps` steps alone; one all-reduce merges
  const base = model.stateDict();
  await group.barrier();
  const t0 = performance.now();
  const own: { state: ReturnType<Model['stateDict']>; weight: number }[] = [];
  for (let k = o.rank; k < o.members; k += o.worldSize) {
    model.loadStateDict(base);
    model.setOptimizer({ momentum: 0.9 });
    model.manualSeed(k);
    await model.trainEpoch(data, shuffled(n, 10 + k).subarray(0, o.steps * o.batch), { lr: 0.01, batchSize: o.batch });
    own.push({ state: model.stateDict(), weight: 1 });
  }
  const t1 = performance.now();
  const merged = await allreduceMerge(group, own, base, o.members);
  await group.barrier();
  const t2 = performance.now();
  result.seconds = (t2 - t0) / 1000;
  result.mergeSeconds = (t2 - t1) / 1000;
  result.tensors = merged.length;
}
group.dispose();
if (o.rank === 0) process.stdout.write(JSON.stringify(result) + '\n');
