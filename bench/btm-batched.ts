/**
 * BTM stage batched vs sequential: the wall time of the N_D fine-tunes and their test-set evaluations
 * with all members in one native call (`btm.parallel` = N_D) and one after another (`btm.parallel` = 1),
 * for the default preset (resnet20 at 28x28x1) and resnet32 at 32x32x3. Target on CPU: <= 0.6x.
 *
 * Standalone: `node build/bench/bench/btm-batched.js [--quick]` after `tsc -p bench/tsconfig.json`.
 */
import { Dataset } from '../src/dataset.js';
import { MemberGroup } from '../src/member-group.js';
import { Model } from '../src/model.js';
import { randomImages, shuffled } from './common.js';

export interface BtmBatchedCase {
  label: string;
  arch: 'resnet20' | 'resnet32';
  channels: 1 | 3;
  size: number;
}

export const BTM_BATCHED_CASES: BtmBatchedCase[] = [
  { label: 'default preset: N_D=10 resnet20 28x28x1', arch: 'resnet20', channels: 1, size: 28 },
  { label: 'N_D=10 resnet32 32x32x3', arch: 'resnet32', channels: 3, size: 32 },
];

export interface BtmBatchedResult {
  label: string;
  sequentialS: number[];
  batchedS: number[];
  ratio: number;
}

/**
 * One case: the work of a BTM stage with the default preset's settings (N_D = 10 members, 10 images
 * per class per subset, batch 32, crop 2, flip, mixup 0.2, `epochs` epochs of lr 0.01, then each member
 * evaluated on a 1000-image test set), on random images of the case's shape, from one starting model.
 * Sequential: each member's epochs via Model.trainEpoch, then Model.evaluate, one member after another
 * (what `btm.parallel` = 1 runs); batched: MemberGroup.train per epoch and one MemberGroup.evaluate.
 * `rounds` alternated pairs; the ratio is min(batched) / min(sequential). The merge (TypeScript,
 * streaming, the same either way) is not included.
 */
export async function btmBatchedCase(
  c: BtmBatchedCase,
  opts: { epochs: number; rounds: number; log?: (s: string) => void; device?: 'cpu' | 'cuda' },
): Promise<BtmBatchedResult> {
  const N = 10, perClass = 10, classes = 10;
  const device = opts.device ?? 'cpu';
  const train = new Dataset(randomImages(2000, c.channels, c.size, classes, 1), device);
  const test = new Dataset(randomImages(1000, c.channels, c.size, classes, 2), device);
  const base = new Model({ arch: c.arch, numClasses: classes, inChannels: c.channels, seed: 1 });
  const state = base.stateDict();
  base.dispose();
  const subsets = Array.from({ length: N }, (_, k) => shuffled(2000, 10 + k).subarray(0, perClass * classes));
  const opt = { lr: 0.01, batchSize: 32, cropPadding: 2, hflip: true, mixupAlpha: 0.2 };
  const mo = { arch: c.arch, numClasses: classes, inChannels: c.channels, seed: 1, device };
  const sequential = async () => {
    const t0 = performance.now();
    for (let k = 0; k < N; k++) {
      const m = new Model(mo);
      m.loadStateDict(state);
      for (let e = 0; e < opts.epochs; e++) {
        m.manualSeed(k * 1000 + e);
        await m.trainEpoch(train, subsets[k], opt);
      }
      await m.evaluate(test, { batchSize: 512 });
      m.dispose();
    }
    return (performance.now() - t0) / 1000;
  };
  const batched = async () => {
    const t0 = performance.now();
    const g = MemberGroup.fromState(mo, state, N);
    for (let e = 0; e < opts.epochs; e++) {
      g.members.forEach((m, k) => m.manualSeed(k * 1000 + e));
      await g.train(train, subsets, opt);
    }
    await g.evaluate(test, { batchSize: 512 });
    g.dispose();
    return (performance.now() - t0) / 1000;
  };
  const seq: number[] = [], bat: number[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    // alternate the order each round so drift in the machine's load does not favour one side
    for (const which of r % 2 === 0 ? ['seq', 'bat'] : ['bat', 'seq']) {
      const s = which === 'seq' ? await sequential() : await batched();
      (which === 'seq' ? seq : bat).push(s);
      opts.log?.(`btm-batched ${c.label}: ${which === 'seq' ? 'sequential' : 'batched'} ${s.toFixed(2)} s`);
    }
  }
  train.dispose();
  test.dispose();
  return { label: c.label, sequentialS: seq, batchedS: bat, ratio: Math.min(...bat) / Math.min(...seq) };
}

if (process.argv[1]?.endsWith('btm-batched.js')) {
  const quick = process.argv.includes('--quick');
  for (const c of BTM_BATCHED_CASES) {
    const r = await btmBatchedCase(c, { epochs: quick ? 3 : 30, rounds: quick ? 1 : 2, log: (s) => process.stderr.write(`${s}\n`) });
    console.log(`${r.label}: sequential ${Math.min(...r.sequentialS).toFixed(1)} s, batched ${Math.min(...r.batchedS).toFixed(1)} s, ratio ${r.ratio.toFixed(3)} (target <= 0.6)`);
  }
}
