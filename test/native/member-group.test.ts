// Members trained together (MemberGroup: one native call per chunk for all members) end where the
// same models trained one after another end, export torchvision-named checkpoints, and evaluate in one
// pass exactly as each model alone does.
//
// Tolerance: not bit-exact. In the group each member runs on one intra-op thread; alone it runs on all
// of them, and kernels that split a reduction (convolution weight gradients, BatchNorm statistics)
// over 2 threads add in another order. Those last-bit differences grow slowly over steps; after 6 SGD
// steps they must stay below 1e-4 relative. All random draws (crops, flips, mixup) are the
// members' own and identical, so any real divergence (a shared generator, mixed-up indices or
// BatchNorm statistics) changes the weights far beyond that and fails (the test also checks that the
// members differ from each other and from the start by > 1e-2).
import { describe, expect, it } from 'vitest';
import { Dataset, Model } from '../../src/index.js';
import { MemberGroup } from '../../src/member-group.js';
import { quadrantTask } from '../helpers/synthetic.js';
import { maxRelDiff } from '../helpers/state-diff.js';

const N = 3;
const mo = { arch: 'resnet8' as const, numClasses: 4, inChannels: 1, seed: 5 };
const train = { batchSize: 8, cropPadding: 2, hflip: true, mixupAlpha: 0.4, lr: 0.05 };

function subsets(n: number): Int32Array[] {
  return Array.from({ length: N }, (_, k) => Int32Array.from({ length: 24 }, (_, i) => (k * 11 + i * 5) % n));
}

describe('MemberGroup', () => {
  const ds = new Dataset(quadrantTask({ n: 64, numClasses: 4, size: 16, seed: 2 }));
  const start = new Model(mo).stateDict();
  const idx = subsets(64);
  const epochs = 2; // 3 steps per epoch: 6 SGD steps per member
  const seedOf = (k: number, e: number) => 1000 * k + e;

  async function sequential(): Promise<Model[]> {
    const out: Model[] = [];
    for (let k = 0; k < N; k++) {
      const m = new Model(mo);
      m.loadStateDict(start);
      m.setOptimizer({ momentum: 0.9, weightDecay: 5e-4 });
      for (let e = 0; e < epochs; e++) {
        m.manualSeed(seedOf(k, e));
        await m.trainEpoch(ds, idx[k], train);
      }
      out.push(m);
    }
    return out;
  }

  async function batched(stacked: boolean | 'auto' = 'auto'): Promise<MemberGroup> {
    const g = MemberGroup.fromState(mo, start, N);
    for (const m of g.members) m.setOptimizer({ momentum: 0.9, weightDecay: 5e-4 });
    for (let e = 0; e < epochs; e++) {
      g.members.forEach((m, k) => m.manualSeed(seedOf(k, e)));
      const rs = await g.train(ds, idx, { ...train, stacked });
      expect(rs.map((r) => r.steps)).toEqual([3, 3, 3]);
    }
    return g;
  }

  it('members trained together equal the same models trained one after another (weights, BN statistics, momentum)', async () => {
    const seq = await sequential();
    const g = await batched();
    for (let k = 0; k < N; k++) {
      const a = g.members[k].stateDict(), b = seq[k].stateDict();
      const { worst, name } = maxRelDiff(a, b);
      expect(worst, `member ${k}: ${name}`).toBeLessThan(1e-4);
      const mo_ = maxRelDiff(g.members[k].optimizerState(), seq[k].optimizerState());
      expect(mo_.worst, `member ${k} momentum: ${mo_.name}`).toBeLessThan(1e-4);
      // and the members really differ from each other and from the start (own subsets and draws)
      if (k > 0) expect(maxRelDiff(a, g.members[0].stateDict()).worst).toBeGreaterThan(1e-2);
      expect(maxRelDiff(a, start).worst).toBeGreaterThan(1e-2);
    }
    // num_batches_tracked counts every step of each member
    const nbt = g.members[0].stateDict().find((e) => e.name === 'bn1.num_batches_tracked')!;
    expect(Number((nbt.data as BigInt64Array)[0])).toBe(6);
    seq.forEach((m) => m.dispose());
    g.dispose();
  });

  it('a member resumed from its exported weights and momentum continues as if never stopped', async () => {
    const g = await batched();
    const saved = g.members.map((m) => ({ w: m.stateDict(), o: m.optimizerState() }));
    const r = MemberGroup.fromState(mo, start, N);
    r.members.forEach((m, k) => {
      m.loadStateDict(saved[k].w);
      m.setOptimizer({ momentum: 0.9, weightDecay: 5e-4 });
      m.loadOptimizerState(saved[k].o);
    });
    for (const grp of [g, r]) {
      grp.members.forEach((m, k) => m.manualSeed(seedOf(k, 7)));
      await grp.train(ds, idx, train);
    }
    for (let k = 0; k < N; k++) expect(maxRelDiff(r.members[k].stateDict(), g.members[k].stateDict()).worst).toBe(0);
    g.dispose();
    r.dispose();
  });

  it('exports exactly the torchvision keys of a lone model, in order', async () => {
    const g = await batched();
    const names = new Model(mo).stateDict().map((e) => e.name);
    for (const m of g.members) expect(m.stateDict().map((e) => e.name)).toEqual(names);
    g.dispose();
  });

  it('batched evaluation equals each member evaluated alone', async () => {
    const g = await batched();
    const test = new Dataset(quadrantTask({ n: 40, numClasses: 4, size: 16, seed: 9 }));
    const all = await g.evaluate(test, { batchSize: 16, logits: true });
    expect(all).toHaveLength(N);
    for (let k = 0; k < N; k++) {
      const alone = await g.members[k].evaluate(test, { batchSize: 16, logits: true });
      expect(Array.from(all[k].preds)).toEqual(Array.from(alone.preds));
      let worst = 0;
      for (let i = 0; i < alone.logits!.length; i++) worst = Math.max(worst, Math.abs(all[k].logits![i] - alone.logits![i]));
      expect(worst).toBeLessThan(1e-4);
    }
    const some = await g.evaluate(test, { indices: Int32Array.from([3, 1, 4]) });
    expect(some[1].preds).toHaveLength(3);
    g.dispose();
  });

  it('rejects bad input by name', async () => {
    const g = MemberGroup.fromState(mo, start, 2);
    await expect(async () => g.train(ds, [idx[0]], train)).rejects.toThrow(/indices must be an array of 2 Int32Array/);
    await expect(async () => g.train(ds, [idx[0], idx[1]], { ...train, lr: [0.1] })).rejects.toThrow(/lr must be a number or an array of 2/);
    const dup = new MemberGroup([g.members[0], g.members[0]]);
    await expect(async () => dup.evaluate(ds)).rejects.toThrow(/models\[1\] appears twice/);
    const other = new Model({ ...mo, arch: 'resnet20' });
    await expect(async () => new MemberGroup([g.members[0], other]).evaluate(ds)).rejects.toThrow(/members must share one architecture/);
    const p = g.train(ds, [idx[0], idx[1]], train);
    expect(() => g.members[1].stateDict()).toThrow(/busy/);
    await p;
    other.dispose();
    g.dispose();
    expect(() => g.evaluate(ds)).toThrow(/disposed/);
  });
});
