// Global batches and SyncBatchNorm on loopback: 2 processes, Gloo. A rank trains its part of every
// global batch with the random draws (crops, flips, mixup) one process makes for the whole batch, and
// BatchNorm in train mode normalises over the global batch: 2 ranks end where one process ends, up to
// float summation order. Ranks run test/helpers/dist-worker.mjs against the compiled dist/.
import { describe, expect, it } from 'vitest';
import { Dataset, gridTask, Model } from '../../src/index.js';
import { expectExitedCleanly, gloo, rank, ranks } from '../helpers/dist.js';
import { maxRelDiff } from '../helpers/state-diff.js';

// 63 samples in global batches of 20 (worker mode globalSteps): parts of 10 + 10, and a last batch of
// 3 cut into parts of 1 and 2
const SHARES = [[0.5, 0.5, 0.5, 1 / 3], [0.5, 0.5, 0.5, 2 / 3]];

describe('globalBatch without a process group', () => {
  it('is refused, naming the option', () => {
    const data = Dataset.fromImageSet(gridTask({ n: 16, size: 8, seed: 1 }), 'cpu');
    const model = new Model({ arch: 'resnet8', numClasses: 4, inChannels: 1, seed: 1 });
    expect(() => model.trainEpoch(data, Int32Array.from({ length: 16 }, (_, i) => i), { lr: 0.1, batchSize: 8, globalBatch: true }))
      .toThrow(/options\.globalBatch needs a process group: call setProcessGroup\(group\) first/);
  });
});

describe.skipIf(!gloo)('global batches and SyncBatchNorm (Gloo, 2 processes)', () => {
  it('train-mode BatchNorm + crops + flips + mixup: 2 ranks equal one process on the same global batches', async () => {
    const [[r0, r1], single] = await Promise.all([ranks(2, { mode: 'globalSteps' }), rank({ mode: 'globalSteps', rank: 0, worldSize: 1 })]);
    expectExitedCleanly(r0, r1, single);
    expect([r0.out.samples, r1.out.samples, single.out.samples]).toEqual([31, 32, 63]);
    // the ranks end bit-identical, running statistics included (SyncBatchNorm updates them from the
    // same global mean and variance on every rank; no averaging at the end)
    expect(r1.out.state).toEqual(r0.out.state);
    // every step's loss: the share-weighted sum of the ranks' part losses is the single process's loss
    // on the whole batch (the parts are its rows, normalised with its statistics)
    let worstLoss = 0;
    for (let s = 0; s < 4; s++) {
      const sum = SHARES[0][s] * r0.out.losses[s] + SHARES[1][s] * r1.out.losses[s];
      worstLoss = Math.max(worstLoss, Math.abs(sum - single.out.losses[s]) / Math.abs(single.out.losses[s]));
    }
    expect(worstLoss).toBeLessThan(1e-5);
    // weights and running statistics: equal up to float summation order (a sum of the ranks' float64
    // statistics and of their weighted gradient sums instead of one reduction over the batch)
    const d = maxRelDiff(r0.out.state, single.out.state);
    console.log(`2 ranks vs 1 process: loss ${worstLoss.toExponential(2)}, state ${d.worst.toExponential(2)} (${d.name})`);
    expect(d.worst, d.name).toBeLessThan(1e-4);
  }, 120_000);

  it('syncBatchNorm false: each rank normalises its own part, so 2 ranks end elsewhere than one process', async () => {
    // 60 samples: parts of 10 everywhere (per-rank BatchNorm needs 2+)
    const [[r0, r1], single, [synced0, synced1]] = await Promise.all([
      ranks(2, { mode: 'globalSteps', syncBatchNorm: false, samples: 60 }),
      rank({ mode: 'globalSteps', rank: 0, worldSize: 1, samples: 60 }),
      ranks(2, { mode: 'globalSteps', samples: 60 }),
    ]);
    expectExitedCleanly(r0, r1, single, synced0, synced1);
    expect(r1.out.state).toEqual(r0.out.state); // weights summed, statistics averaged at the end
    const off = maxRelDiff(r0.out.state, single.out.state).worst;
    const on = maxRelDiff(synced0.out.state, single.out.state).worst;
    console.log(`60 samples, 2 ranks vs 1 process: SyncBatchNorm on ${on.toExponential(2)}, off ${off.toExponential(2)}`);
    expect(on).toBeLessThan(1e-4);
    expect(off).toBeGreaterThan(1e-2); // the part's statistics, not the batch's: a real difference
  }, 120_000);

  it('bad settings get clear errors', async () => {
    const [a, b] = await ranks(2, { mode: 'badSettings' });
    expectExitedCleanly(a, b);
    expect(a.out.syncType).toMatch(/Model\.setProcessGroup: options\.syncBatchNorm must be a boolean, got/);
    expect(a.out.unknownKey).toMatch(/Model\.setProcessGroup: options.*syncBN/);
    expect(a.out.withGradWeights).toMatch(/gradWeights and globalBatch exclude each other/);
    // per-rank BatchNorm cannot take a part of 1 sample: the last global batch of 3 gives one
    expect(a.out.partTooSmall).toMatch(/globalBatch: a global batch of 3 sample\(s\) .* gives a rank a part of 1 on 2 ranks; each part needs 2\+ \(BatchNorm in train mode per rank, without syncBatchNorm\)/);
    expect(b.out).toEqual(a.out);
  }, 120_000);
});
