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

const modes = { dataParallelSteps, killed, join, pipeline };
const out = await modes[o.mode]();
process.stdout.write(JSON.stringify(out) + '\n');
