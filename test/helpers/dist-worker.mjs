// One rank of a 2-process c10d test (test/dist/*.test.ts). Usage:
//   node dist-worker.mjs DIST_INDEX JSON  where JSON = {mode, rank, worldSize, port, ...}
// Prints one JSON line with the result on stdout.
import { pathToFileURL } from 'node:url';

const [dist, json] = process.argv.slice(2);
const o = JSON.parse(json);
const lib = await import(pathToFileURL(dist).href);
lib.setNumThreads(1);

function task() {
  const set = lib.gridTask({ n: 64, size: 16, seed: 7 });
  return lib.Dataset.fromImageSet(set, 'cpu');
}

async function dataParallelSteps() {
  const data = task();
  const model = new lib.Model({ arch: 'resnet8', numClasses: 4, inChannels: 1, seed: 3 });
  model.setOptimizer({ momentum: 0.9, weightDecay: 5e-4 });
  const order = Int32Array.from({ length: 64 }, (_, i) => (i * 29) % 64);
  const train = { lr: 0.05, bnMode: o.bnMode ?? 'eval' };
  let group;
  if (o.worldSize > 1) {
    group = await lib.ProcessGroup.init({ rank: o.rank, worldSize: o.worldSize, port: o.port, timeoutMs: 60000 });
    model.setProcessGroup(group);
    await model.broadcastFrom(group, 0);
    const shard = lib.shardEpoch(order, 32, o.rank, o.worldSize, 2);
    await model.trainEpoch(data, shard.indices, { ...train, batchSize: 32 / o.worldSize, gradWeights: shard.gradWeights });
    if (train.bnMode === 'train') await model.averageBuffers(group);
  } else {
    await model.trainEpoch(data, order, { ...train, batchSize: 32 });
  }
  const state = model.stateDict().map((e) => ({ name: e.name, data: Array.from(e.data, Number) }));
  group?.dispose();
  return { state };
}

// Train-mode BatchNorm, crops, flips and mixup: 2 ranks on global batches (SyncBatchNorm unless
// o.syncBatchNorm === false) against one process on the same global order. 63 samples in global
// batches of 20: the last batch of 3 gives the ranks parts of 1 and 2 (shares 1/3 and 2/3).
async function globalSteps() {
  const data = task();
  const model = new lib.Model({ arch: 'resnet8', numClasses: 4, inChannels: 1, seed: 3 });
  model.setOptimizer({ momentum: 0.9, weightDecay: 5e-4 });
  model.manualSeed(11);
  const order = Int32Array.from({ length: o.samples ?? 63 }, (_, i) => (i * 29) % 64);
  const train = { lr: 0.05, batchSize: 20, bnMode: 'train', cropPadding: 2, hflip: true, mixupAlpha: 0.4 };
  let group;
  let r;
  if (o.worldSize > 1) {
    group = await lib.ProcessGroup.init({ rank: o.rank, worldSize: o.worldSize, port: o.port, timeoutMs: 60000 });
    model.setProcessGroup(group, o.syncBatchNorm === undefined ? undefined : { syncBatchNorm: o.syncBatchNorm });
    await model.broadcastFrom(group, 0);
    try {
      r = await model.trainEpoch(data, order, { ...train, globalBatch: true });
    } catch (e) {
      group.dispose();
      return { error: e.message };
    }
    if (o.syncBatchNorm === false) await model.averageBuffers(group);
  } else {
    r = await model.trainEpoch(data, order, train);
  }
  const state = model.stateDict().map((e) => ({ name: e.name, data: Array.from(e.data, Number) }));
  group?.dispose();
  return { state, losses: Array.from(r.losses), samples: r.samples };
}

// The errors of bad data-parallel settings (every rank makes the same calls; none reaches a collective).
async function badSettings() {
  const data = task();
  const model = new lib.Model({ arch: 'resnet8', numClasses: 4, inChannels: 1, seed: 3 });
  const group = await lib.ProcessGroup.init({ rank: o.rank, worldSize: o.worldSize, port: o.port, timeoutMs: 60000 });
  const message = async (f) => {
    try {
      await f();
      return null;
    } catch (e) {
      return e.message;
    }
  };
  const order = Int32Array.from({ length: 63 }, (_, i) => i);
  const out = {
    syncType: await message(() => model.setProcessGroup(group, { syncBatchNorm: 'yes' })),
    unknownKey: await message(() => model.setProcessGroup(group, { syncBN: true })),
  };
  model.setProcessGroup(group);
  out.withGradWeights = await message(() => model.trainEpoch(data, order, { lr: 0.1, batchSize: 20, globalBatch: true, gradWeights: [0.5, 0.5, 0.5, 0.5] }));
  model.setProcessGroup(group, { syncBatchNorm: false });
  out.partTooSmall = await message(() => model.trainEpoch(data, order, { lr: 0.1, batchSize: 20, globalBatch: true }));
  await group.barrier();
  group.dispose();
  return out;
}

async function killed() {
  const group = await lib.ProcessGroup.init({ rank: o.rank, worldSize: o.worldSize, port: o.port, timeoutMs: 60000 });
  await group.allreduce([Float32Array.of(1)]);
  if (o.rank === o.victim) process.kill(process.pid, 'SIGKILL');
  const t0 = Date.now();
  try {
    await group.allreduce([new Float32Array(1000)]);
    return { error: null };
  } catch (e) {
    return { error: e.message, seconds: (Date.now() - t0) / 1000 };
  }
}

async function join() {
  const t0 = Date.now();
  try {
    const group = await lib.ProcessGroup.init({ rank: o.rank, worldSize: o.worldSize, port: o.port, timeoutMs: o.timeoutMs ?? 60000 });
    await group.barrier();
    if (o.holdMs) await new Promise((r) => setTimeout(r, o.holdMs));
    await group.barrier();
    group.dispose();
    return { joined: true };
  } catch (e) {
    return { error: e.message, seconds: (Date.now() - t0) / 1000 };
  }
}

async function pipeline() {
  const r = await lib.runPipeline(o.config, { distributed: { rank: o.rank, worldSize: o.worldSize, port: o.port, timeoutSeconds: 120 } });
  return { status: r.status, rows: r.rows, dir: r.dir };
}

const modes = { dataParallelSteps, globalSteps, badSettings, killed, join, pipeline };
const out = await modes[o.mode]();
process.stdout.write(JSON.stringify(out) + '\n');
