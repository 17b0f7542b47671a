// NCCL check on a CUDA box (run.sh --nccl, with the addon built with BTM_NCCL=1 at BTM_NODE_ADDON):
// a group of one rank on cuda:0 over NCCL, an all-reduce, and a data-parallel trainEpoch that must equal
// the same training without the group. Prints what it checked; exit 1 on a failure.
import { createServer } from 'node:net';
const lib = await import(new URL('../../dist/index.js', import.meta.url).href);
const fail = (m) => { console.error('nccl-check: FAILED: ' + m); process.exit(1); };
console.log('backends:', lib.distBackends().join(', '));
if (!lib.distBackends().includes('nccl')) fail('this addon has no nccl backend (build with BTM_NCCL=1)');
const port = await new Promise((r) => { const s = createServer(); s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => r(p)); }); });
lib.setCudaDeterministic(true);
const group = await lib.ProcessGroup.init({ rank: 0, worldSize: 1, port, backend: 'nccl', device: 'cuda:0', timeoutMs: 60000 });
console.log('joined: rank', group.rank, 'of', group.worldSize, group.backend);
const [sum] = await group.allreduce([Float32Array.of(1, 2, 3)], { scale: 2 });
if (Array.from(sum).join() !== '2,4,6') fail(`allreduce gave ${Array.from(sum)}`);
const set = lib.gridTask({ n: 64, size: 16, seed: 7 });
const data = lib.Dataset.fromImageSet(set, 'cuda:0');
const order = Int32Array.from({ length: 64 }, (_, i) => (i * 29) % 64);
const train = async (withGroup) => {
  const m = new lib.Model({ arch: 'resnet8', numClasses: 4, inChannels: 1, seed: 3, device: 'cuda:0' });
  m.setOptimizer({ momentum: 0.9 });
  if (withGroup) { m.setProcessGroup(group); await m.broadcastFrom(group); }
  await m.trainEpoch(data, order, { lr: 0.05, batchSize: 32, bnMode: 'train', ...(withGroup ? { gradWeights: [1, 1] } : {}) });
  if (withGroup) await m.averageBuffers(group);
  const s = m.stateDict(); m.dispose(); return s;
};
const a = await train(true), b = await train(false);
let worst = 0;
for (let i = 0; i < a.length; i++) for (let j = 0; j < a[i].data.length; j++) worst = Math.max(worst, Math.abs(Number(a[i].data[j]) - Number(b[i].data[j])));
console.log('data-parallel (1 rank, NCCL) vs plain, largest weight difference:', worst);
if (!(worst < 1e-5)) fail('NCCL data-parallel training differs from plain training');
group.dispose();
console.log('nccl-check: ok');
