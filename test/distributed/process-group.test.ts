// c10d on loopback: 2 processes, Gloo. Each test starts its ranks as child processes running
// test/helpers/dist-worker.mjs against the compiled dist/ (test/global-setup.ts builds it).
import { describe, expect, it } from 'vitest';
import { shardEpoch } from '../../src/distributed/shard.js';
import { expectExitedCleanly, freePort, gloo, rank, ranks } from '../helpers/dist.js';
import { maxScaledDiff } from '../helpers/state-diff.js';

describe('shardEpoch', () => {
  it('cuts every global batch into contiguous parts whose union is the batch, weights n_r / N', () => {
    const order = Int32Array.from({ length: 70 }, (_, i) => 69 - i);
    const parts = [0, 1, 2].map((r) => shardEpoch(order, 30, r, 3));
    expect(parts.map((p) => p.steps)).toEqual([3, 3, 3]);
    // the union of the ranks' parts of step s is global batch s, in order
    for (let s = 0; s < 3; s++) {
      const global = Array.from(order.subarray(s * 30, s * 30 + 30));
      const union = parts.flatMap((p) => Array.from(p.indices.subarray(s * 10, s * 10 + 10)));
      expect(union).toEqual(global);
    }
    for (let s = 0; s < 3; s++) expect(parts.reduce((a, p) => a + p.gradWeights[s], 0)).toBeCloseTo(1, 6);
    expect(parts[0].gradWeights[2]).toBeCloseTo(3 / 10, 6);
  });

  it('leaves out a last global batch too small for every rank, on every rank alike', () => {
    const order = Int32Array.from({ length: 33 }, (_, i) => i);
    const a = shardEpoch(order, 16, 0, 2, 2), b = shardEpoch(order, 16, 1, 2, 2);
    expect([a.steps, b.steps, a.dropped]).toEqual([2, 2, 1]);
    expect(a.indices.length + b.indices.length).toBe(32);
  });

  it('refuses a global batch that the world size does not divide, naming both', () => {
    expect(() => shardEpoch(new Int32Array(10), 10, 0, 3)).toThrow(/batchSize 10 .*world size 3/);
  });
});

describe.skipIf(!gloo)('process group on loopback (Gloo, 2 processes)', () => {
  it('one data-parallel epoch of 2 ranks equals one process on the union batches (BatchNorm in eval mode)', async () => {
    const [[r0, r1], single] = await Promise.all([ranks(2, { mode: 'dataParallelSteps' }), rank({ mode: 'dataParallelSteps', rank: 0, worldSize: 1 })]);
    expectExitedCleanly(r0, r1, single);
    // the ranks end bit-identical: the same summed gradient, the same SGD step
    expect(r1.out.state).toEqual(r0.out.state);
    // and equal to the single process up to float summation order (a sum of two half-batch means
    // instead of one mean): measured ~1e-7 relative; bound 1e-5
    const d = maxScaledDiff(r0.out.state, single.out.state).worst;
    expect(d).toBeLessThan(1e-5);
    expect(d).toBeGreaterThanOrEqual(0);
  }, 120_000);

  it('with train-mode BatchNorm the ranks stay identical (statistics averaged at the end)', async () => {
    const [r0, r1] = await ranks(2, { mode: 'dataParallelSteps', bnMode: 'train' });
    expect(r0.code, r0.stderr).toBe(0);
    expect(r1.out.state).toEqual(r0.out.state);
  }, 120_000);

  it('a rank killed with SIGKILL makes the other fail at once with an error naming its rank', async () => {
    const [r0, r1] = await ranks(2, { mode: 'killed', victim: 1 });
    expect(r1.signal).toBe('SIGKILL');
    expect(r0.code, r0.stderr).toBe(0);
    expect(r0.out.error).toMatch(/rank 0 of 2: allreduce failed \(another rank stopped/);
    expect(r0.out.seconds).toBeLessThan(10); // the collective timeout is 60 s: it did not wait for it
  }, 120_000);

  it('a second group on a port in use gets a clear error, and the first group is unharmed', async () => {
    const port = await freePort();
    const first = ranks(2, { mode: 'join', port, holdMs: 4000 });
    await new Promise((r) => setTimeout(r, 1500));
    const second = await rank({ mode: 'join', rank: 0, worldSize: 2, port, timeoutMs: 3000 });
    expect(second.out.error).toMatch(new RegExp(`rank 0 cannot serve the rendezvous at 127.0.0.1:${port}: the port is in use`));
    const done = await first;
    for (const r of done) expect(r.out, r.stderr).toEqual({ joined: true });
  }, 120_000);

  it('a rank that never comes: the rendezvous gives up after timeoutMs with the address', async () => {
    const port = await freePort();
    const alone = await rank({ mode: 'join', rank: 1, worldSize: 2, port, timeoutMs: 2000 });
    expect(alone.out.error).toMatch(/rank 1: rendezvous at 127.0.0.1:\d+ failed/);
    expect(alone.out.seconds).toBeLessThan(30);
  }, 60_000);
});
