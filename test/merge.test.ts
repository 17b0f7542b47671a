import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  StateAccumulator, adaptiveWeights, greedySoup, interpolate, interpolationSweep, mergeFiles,
} from '../src/merge.js';
import { writeSafetensors } from '../src/safetensors.js';
import type { StateDict, StateEntry } from '../src/state-dict.js';
import { Rng } from '../src/sampling/rng.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'btm-merge-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A seeded uniform [0, 1) stream (the project's Rng), so failures reproduce. */
function random(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.nextFloat();
}

/** A small ResNet-like state dict with random float values and a batch counter. */
function randomState(seed: number, counter = 100n): StateDict {
  const rnd = random(seed);
  const f = (name: string, shape: number[]): StateEntry => {
    const n = shape.reduce((a, b) => a * b, 1);
    return { name, shape, dtype: 'float32', data: Float32Array.from({ length: n }, () => (rnd() - 0.5) * 4) };
  };
  return [
    f('conv1.weight', [4, 3, 3, 3]),
    f('bn1.weight', [4]),
    f('bn1.running_var', [4]),
    { name: 'bn1.num_batches_tracked', shape: [], dtype: 'int64', data: BigInt64Array.of(counter) },
    f('fc.weight', [5, 4]),
    f('fc.bias', [5]),
  ];
}

function scalarState(x: number): StateDict {
  return [{ name: 'x', shape: [1], dtype: 'float32', data: Float32Array.of(x) }];
}

/** Independent reference: Σ w_k·s_k / Σ w_k per float element, in float64. */
function referenceMean(states: StateDict[], weights = states.map(() => 1)): Map<string, number[]> {
  const total = weights.reduce((a, b) => a + b, 0);
  const out = new Map<string, number[]>();
  for (const entry of states[0]) {
    if (entry.dtype !== 'float32') continue;
    out.set(entry.name, Array.from(entry.data as Float32Array, (_, i) => {
      let s = 0;
      states.forEach((st, k) => {
        s += weights[k] * (st.find((e) => e.name === entry.name)!.data as Float32Array)[i];
      });
      return s / total;
    }));
  }
  return out;
}

/** Every float element of `got` equals the reference to float32 rounding (half an ulp, plus slack). */
function expectCloseToReference(got: StateDict, ref: Map<string, number[]>): void {
  expect(got.filter((e) => e.dtype === 'float32').map((e) => e.name).sort()).toEqual([...ref.keys()].sort());
  for (const entry of got) {
    if (entry.dtype !== 'float32') continue;
    expect(entry.data).toBeInstanceOf(Float32Array);
    const want = ref.get(entry.name)!;
    entry.data.forEach((v, i) => {
      expect(Math.abs(Number(v) - want[i])).toBeLessThanOrEqual(Math.abs(want[i]) * 2 ** -23 + 1e-30);
    });
  }
}

const get = (dict: StateDict, name: string) => dict.find((e) => e.name === name)!;

describe('StateAccumulator', () => {
  it('streams the plain element-wise mean of 3 state dicts (entry order may differ)', () => {
    const states = [randomState(1), randomState(2), randomState(3)];
    const acc = new StateAccumulator();
    acc.add(states[0]).add([...states[1]].reverse()).add(states[2]);
    expect(acc.count).toBe(3);
    expect(acc.totalWeight).toBe(3);
    const mean = acc.result();
    expect(mean.map((e) => e.name)).toEqual(states[0].map((e) => e.name));
    expect(mean.map((e) => e.shape)).toEqual(states[0].map((e) => e.shape));
    expectCloseToReference(mean, referenceMean(states));
    // The result owns fresh arrays.
    expect(get(mean, 'fc.bias').data).not.toBe(get(states[0], 'fc.bias').data);
  });

  it('computes the weighted mean with weights [1, 2, 3]', () => {
    const states = [randomState(4), randomState(5), randomState(6)];
    const acc = new StateAccumulator();
    states.forEach((s, k) => acc.add(s, k + 1));
    expect(acc.totalWeight).toBe(6);
    const ref = referenceMean(states, [1, 2, 3]);
    expectCloseToReference(acc.result(), ref);
    // and it differs from the unweighted mean
    const uniform = referenceMean(states);
    expect(ref.get('fc.weight')![0]).not.toBeCloseTo(uniform.get('fc.weight')![0], 3);
  });

  it('accumulates in float64, so precision does not depend on the number of states', () => {
    // In float32, 2^24 + 1 === 2^24: a float32 running sum would lose all 1000 ones.
    const acc = new StateAccumulator().add(scalarState(2 ** 24));
    for (let i = 0; i < 1000; i++) acc.add(scalarState(1));
    const x = (acc.result()[0].data as Float32Array)[0];
    expect(x).toBe(Math.fround((2 ** 24 + 1000) / 1001));
  });

  it('rejects a mismatched layout, naming the state index, its label and the keys', () => {
    const acc = new StateAccumulator().add(randomState(1), 1, 'a.safetensors').add(randomState(2));
    const bad = randomState(3)
      .filter((e) => e.name !== 'fc.bias')
      .map((e) => (e.name === 'fc.weight' ? { ...e, shape: [4, 5] } : e))
      .map((e): StateEntry => (e.name === 'bn1.num_batches_tracked'
        ? { ...e, dtype: 'float32', data: Float32Array.of(1) } : e));
    bad.push({ name: 'extra', shape: [1], dtype: 'float32', data: Float32Array.of(0) });
    let message = '';
    try {
      acc.add(bad, 1, 'third.safetensors');
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/^state #2 \(third\.safetensors\): /);
    expect(message).toContain("missing key 'fc.bias'");
    expect(message).toContain("shape mismatch for 'fc.weight'");
    expect(message).toContain("dtype mismatch for 'bn1.num_batches_tracked'");
    expect(message).toContain("unexpected key 'extra'");
    // Without a label, only the index; and the failed add changed nothing.
    expect(() => acc.add(randomState(4).slice(1))).toThrow(/^state #2: missing key 'conv1\.weight'$/);
    expect(acc.count).toBe(2);
    expectCloseToReference(acc.result(), referenceMean([randomState(1), randomState(2)]));
  });

  it('rejects data that does not match its own shape or dtype, duplicates and bad weights', () => {
    const acc = new StateAccumulator();
    expect(() => acc.add([{ name: 'w', shape: [3], dtype: 'float32', data: new Float32Array(2) }]))
      .toThrow(/state #0: 'w' has 2 elements, shape \[3\] needs 3/);
    expect(() => acc.add([{ name: 'w', shape: [1], dtype: 'int64', data: new Float32Array(1) }]))
      .toThrow(/Float32Array data for dtype int64/);
    expect(() => acc.add([...scalarState(1), ...scalarState(2)])).toThrow(/state #0: duplicate .*'x'/);
    expect(() => acc.add(scalarState(1), -1)).toThrow(RangeError);
    expect(() => acc.add(scalarState(1), Number.NaN)).toThrow(RangeError);
    expect(() => acc.add(scalarState(1), Infinity)).toThrow(RangeError);
    expect(acc.count).toBe(0);
    expect(() => acc.result()).toThrow(/no state/);
    acc.add(scalarState(1), 0);
    expect(() => acc.result()).toThrow(/total weight is 0/);
  });

  it('a weight-0 state is layout-checked but contributes nothing (not even NaN)', () => {
    const acc = new StateAccumulator().add(scalarState(2), 1).add(scalarState(Number.NaN), 0);
    expect(acc.count).toBe(2);
    expect((acc.result()[0].data as Float32Array)[0]).toBe(2);
  });

  it('rounds num_batches_tracked to the nearest integer and keeps it int64', () => {
    const counter = (...values: bigint[]) => {
      const acc = new StateAccumulator();
      values.forEach((v) => acc.add(randomState(1, v)));
      const entry = get(acc.result(), 'bn1.num_batches_tracked');
      expect(entry.dtype).toBe('int64');
      expect(entry.data).toBeInstanceOf(BigInt64Array);
      return entry.data[0];
    };
    expect(counter(10n, 11n, 11n)).toBe(11n); // 10.67
    expect(counter(10n, 10n, 11n)).toBe(10n); // 10.33
    expect(counter(1n, 2n)).toBe(2n); // 1.5 rounds up
    expect(counter(1000n, 1000n, 1000n)).toBe(1000n);
    // weighted: (1·0 + 3·10) / 4 = 7.5 → 8
    const acc = new StateAccumulator().add(randomState(1, 0n), 1).add(randomState(2, 10n), 3);
    expect(get(acc.result(), 'bn1.num_batches_tracked').data[0]).toBe(8n);
  });
});

describe('mergeFiles', () => {
  const states = [randomState(11), randomState(12), randomState(13)];
  const files: string[] = [];
  beforeAll(async () => {
    for (let k = 0; k < states.length; k++) {
      files.push(path.join(dir, `model-${k}.safetensors`));
      await writeSafetensors(files[k], states[k]);
    }
  });

  it('equals the in-memory average, uniform and weighted', async () => {
    const merged = await mergeFiles(files);
    const inMemory = new StateAccumulator();
    states.forEach((s) => inMemory.add(s));
    expect(merged).toEqual(inMemory.result());
    expectCloseToReference(merged, referenceMean(states));

    const weighted = await mergeFiles(files, { weights: [1, 2, 3] });
    expectCloseToReference(weighted, referenceMean(states, [1, 2, 3]));
  });

  it('rejects bad weights with a RangeError naming weights, before reading any file', async () => {
    const missing = [...files.slice(0, 2), path.join(dir, 'does-not-exist.safetensors')];
    for (const weights of [[1, 1], [1, 1, 1, 1], [1, -1, 1], [1, Number.NaN, 1], [1, Infinity, 1], [0, 0, 0]]) {
      await expect(mergeFiles(missing, { weights })).rejects.toThrow(RangeError);
      await expect(mergeFiles(missing, { weights })).rejects.toThrow(/weights/);
    }
    await expect(mergeFiles([])).rejects.toThrow(RangeError);
    // Zero weights are fine as long as the sum is positive.
    const merged = await mergeFiles(files, { weights: [0, 1, 0] });
    expectCloseToReference(merged, referenceMean([states[1]]));
  });

  it('names the offending file on a layout mismatch', async () => {
    const odd = path.join(dir, 'odd.safetensors');
    await writeSafetensors(odd, states[0].filter((e) => e.name !== 'bn1.weight'));
    await expect(mergeFiles([files[0], files[1], odd])).rejects.toThrow(
      `state #2 (${odd}): missing key 'bn1.weight'`,
    );
  });
});

describe('adaptiveWeights', () => {
  it('is proportional to the scores and sums to one', () => {
    const scores = [26.37, 15.54, 30.1, 0];
    const w = adaptiveWeights(scores);
    expect(w.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 14);
    expect(w[0] / w[1]).toBeCloseTo(scores[0] / scores[1], 12);
    expect(w[2] / w[0]).toBeCloseTo(scores[2] / scores[0], 12);
    expect(w[3]).toBe(0);
    expect(adaptiveWeights([2, 2, 2, 2])).toEqual([0.25, 0.25, 0.25, 0.25]);
  });

  it('rejects all-zero, negative and non-finite scores', () => {
    expect(() => adaptiveWeights([0, 0])).toThrow(RangeError);
    expect(() => adaptiveWeights([])).toThrow(RangeError);
    expect(() => adaptiveWeights([1, -0.5])).toThrow(/scores\[1\]/);
    expect(() => adaptiveWeights([Number.NaN, 1])).toThrow(RangeError);
    expect(() => adaptiveWeights([Infinity, 1])).toThrow(RangeError);
  });
});

describe('greedySoup', () => {
  /** Score of a one-tensor state [x]: peaks at x = 1. */
  const score = (x: number) => -((x - 1) ** 2);
  const xOf = (s: StateDict) => (s[0].data as Float32Array)[0];

  function harness(xs: Record<string, number>) {
    const loads: string[] = [];
    const evaluated: number[] = [];
    return {
      loads,
      evaluated,
      load: async (id: string) => {
        loads.push(id);
        return scalarState(xs[id]);
      },
      evaluate: async (s: StateDict) => {
        evaluated.push(xOf(s));
        return score(xOf(s));
      },
    };
  }

  it('accepts 1.2 and 0.8, rejects 5.0, and ends at x = 1', async () => {
    const xs = { 'x5.0': 5.0, 'x1.2': 1.2, 'x0.8': 0.8 };
    // Individual scores from the same function, on the float32 values the states hold.
    const candidates = Object.entries(xs).map(([id, x]) => ({ id, score: score(Math.fround(x)) }));
    const h = harness(xs);
    const soup = await greedySoup(candidates, h.load, h.evaluate);

    // fround(0.8) is nearer 1 than fround(1.2), so 0.8 seeds the soup.
    expect(soup.members).toEqual(['x0.8', 'x1.2']);
    expect(xOf(soup.state)).toBe(1);
    expect(soup.score).toBeCloseTo(0, 12);
    expect(soup.trace).toHaveLength(2);
    expect(soup.trace[0]).toMatchObject({ id: 'x1.2', accepted: true });
    expect(soup.trace[0].scoreBefore).toBeCloseTo(-0.04, 6);
    expect(soup.trace[0].scoreWith).toBeCloseTo(0, 12);
    expect(soup.trace[1]).toMatchObject({ id: 'x5.0', accepted: false });
    expect(soup.trace[1].scoreBefore).toBeCloseTo(0, 12);
    expect(soup.trace[1].scoreWith).toBeCloseTo(score(7 / 3), 5);
    // Each candidate loaded once, best first; seed + one evaluation per trial.
    expect(h.loads).toEqual(['x0.8', 'x1.2', 'x5.0']);
    expect(h.evaluated).toHaveLength(3);
  });

  it('leaves a rejected candidate out of later averages, and accepts ties (>=)', async () => {
    const xs = { a: 2, b: 10, c: 0, d: 1 };
    // Given scores only set the order: a, b, c, d.
    const candidates = [{ id: 'd', score: 0 }, { id: 'c', score: 1 }, { id: 'b', score: 2 }, { id: 'a', score: 3 }];
    const h = harness(xs);
    const soup = await greedySoup(candidates, h.load, h.evaluate);
    // {a} = 2 (−1); +b → 6 (−25) rejected; +c → (2+0)/2 = 1 (0) accepted; +d → 1 (0) tie accepted.
    expect(soup.members).toEqual(['a', 'c', 'd']);
    expect(xOf(soup.state)).toBe(1);
    expect(soup.trace.map((t) => [t.id, t.accepted, t.scoreWith, t.scoreBefore])).toEqual([
      ['b', false, -25, -1],
      ['c', true, -0, -1],
      ['d', true, -0, -0],
    ]);
    expect(h.evaluated).toEqual([2, 6, 1, 1]);
  });

  it('never accepts a NaN score and rejects empty or NaN-scored candidates', async () => {
    const soup = await greedySoup(
      [{ id: 'a', score: 2 }, { id: 'b', score: 1 }],
      async (id) => scalarState(id === 'a' ? 1 : 3),
      async (s) => (xOf(s) === 1 ? 0 : Number.NaN),
    );
    expect(soup.members).toEqual(['a']);
    expect(soup.trace[0].accepted).toBe(false);
    const never = async (): Promise<never> => {
      throw new Error('unreachable');
    };
    await expect(greedySoup([], never, never)).rejects.toThrow(RangeError);
    await expect(greedySoup([{ id: 'a', score: Number.NaN }], never, never)).rejects.toThrow(/NaN/);
  });
});

describe('interpolate', () => {
  const a = randomState(21, 3n);
  const b = randomState(22, 4n);

  it('returns exactly a at lambda = 0 and exactly b at lambda = 1', () => {
    const withNegZero = (s: StateDict) => s.map((e) => (e.name === 'fc.bias'
      ? { ...e, data: Float32Array.of(-0, Number.NaN, Infinity, 1, 2) } : e));
    const a0 = withNegZero(a);
    expect(interpolate(a0, b, 0)).toEqual(a0);
    expect(Object.is(get(interpolate(a0, b, 0), 'fc.bias').data[0], -0)).toBe(true);
    expect(interpolate(a, b, 1)).toEqual(b);
    // b in another entry order still comes back in a's order.
    expect(interpolate(a, [...b].reverse(), 1)).toEqual(b);
    expect(get(interpolate(a, b, 1), 'fc.bias').data).not.toBe(get(b, 'fc.bias').data);
  });

  it('gives the midpoint at lambda = 0.5, with num_batches_tracked rounded', () => {
    const mid = interpolate(a, b, 0.5);
    expectCloseToReference(mid, referenceMean([a, b]));
    expect(get(mid, 'bn1.num_batches_tracked').data[0]).toBe(4n); // 3.5
    expect(get(interpolate(a, b, 0.25), 'bn1.num_batches_tracked').data[0]).toBe(3n); // 3.25
    expectCloseToReference(interpolate(a, b, 0.25), referenceMean([a, b], [0.75, 0.25]));
  });

  it('rejects lambda outside [0, 1] and mismatched layouts', () => {
    for (const lambda of [-0.1, 1.1, Number.NaN, Infinity]) {
      expect(() => interpolate(a, b, lambda)).toThrow(RangeError);
    }
    expect(() => interpolate(a, b.slice(1), 0.5)).toThrow(/state #1 \(b\): missing key 'conv1\.weight'/);
    expect(() => interpolate(a, b.slice(1), 0)).toThrow(/state #1 \(b\): missing key 'conv1\.weight'/);
  });

  it('interpolationSweep scores each lambda in order, checking all lambdas first', async () => {
    const seen: number[] = [];
    const evaluate = async (s: StateDict) => {
      const x = (s[0].data as Float32Array)[0];
      seen.push(x);
      return -((x - 1) ** 2);
    };
    const sweep = await interpolationSweep(scalarState(0), scalarState(2), [0, 0.25, 0.5, 0.75, 1], evaluate);
    expect(sweep).toEqual([
      { lambda: 0, score: -1 },
      { lambda: 0.25, score: -0.25 },
      { lambda: 0.5, score: -0 },
      { lambda: 0.75, score: -0.25 },
      { lambda: 1, score: -1 },
    ]);
    seen.length = 0;
    await expect(interpolationSweep(scalarState(0), scalarState(2), [0.5, 2], evaluate)).rejects.toThrow(/lambdas\[1\]/);
    expect(seen).toEqual([]);
  });
});

describe('mergeFiles memory', () => {
  const gc = (globalThis as { gc?: () => void }).gc;

  // vitest.config.ts passes --expose-gc to the test workers: this test runs in every `npm test`
  it('peak memory is flat in the number of files (2 vs 12 x 20 MB)', async () => {
    expect(gc, 'global.gc is unavailable: the workers must run with --expose-gc (vitest.config.ts execArgv)').toBeTypeOf('function');
    const numel = 5_000_000; // 20 MB of float32 per file
    const big: StateDict = [
      { name: 'w', shape: [numel - 8], dtype: 'float32', data: new Float32Array(numel - 8).fill(0.5) },
      { name: 'b', shape: [8], dtype: 'float32', data: new Float32Array(8).fill(1) },
      { name: 'bn.num_batches_tracked', shape: [], dtype: 'int64', data: BigInt64Array.of(7n) },
    ];
    const files: string[] = [];
    for (let k = 0; k < 12; k++) {
      files.push(path.join(dir, `big-${k}.safetensors`));
      await writeSafetensors(files[k], big);
    }

    /** Collect garbage until ArrayBuffer accounting settles (backing stores are freed lazily). */
    async function settle(): Promise<number> {
      for (let i = 0; i < 3; i++) {
        gc!();
        await tick();
      }
      return process.memoryUsage().arrayBuffers;
    }

    /** Peak and retained (result held) growth of ArrayBuffer memory while merging `paths`, in MB. */
    async function measure(paths: string[]) {
      const base = await settle();
      const baseRss = process.memoryUsage().rss;
      let peak = base;
      let peakRss = baseRss;
      const timer = setInterval(() => {
        const m = process.memoryUsage();
        peak = Math.max(peak, m.arrayBuffers);
        peakRss = Math.max(peakRss, m.rss);
      }, 1);
      const merged = await mergeFiles(paths);
      clearInterval(timer);
      peak = Math.max(peak, process.memoryUsage().arrayBuffers);
      const retained = (await settle()) - base;
      expect((merged[0].data as Float32Array)[123]).toBe(0.5);
      const mb = (x: number) => x / 2 ** 20;
      return { peak: mb(peak - base), retained: mb(retained), rss: mb(peakRss - baseRss) };
    }

    const two = await measure(files.slice(0, 2));
    const twelve = await measure(files);
    console.log(`mergeFiles memory growth (MB): 2 files ${JSON.stringify(two)}, 12 files ${JSON.stringify(twelve)}`);
    // Holding every model would add 10 x 20 MB = 200 MB between the two runs.
    expect(twelve.peak - two.peak).toBeLessThan(60);
    // What stays is the float32 result alone (~19 MiB), whatever the number of files.
    for (const m of [two, twelve]) expect(m.retained).toBeLessThan(25);
    for (const f of files) fs.rmSync(f);
  });
});
