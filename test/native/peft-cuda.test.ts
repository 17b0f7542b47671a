// PEFT modules on CUDA (skipped without a GPU; BTM_TEST_CUDA=1 makes a missing GPU a failure):
//  - attached on a CUDA model they are exact no-ops (bit-identical logits on that device);
//  - trained on CUDA (deterministic mode), frozen tensors stay bit-identical and the chosen ones move;
//  - the exported state (LoRA / SSF merged, AdaptFormer by name, cosine head) loaded into a CPU model with
//    the same unmerged modules gives the CUDA model's logits (tolerance 1e-4 x max(1, max |logit|): two
//    devices' kernels);
//  - the same PEFT training on the CPU and on CUDA ends close (relative L2 of the logits <= 1e-3).
import { describe, expect, it } from 'vitest';
import { cudaAvailable, Dataset, Model, setCudaDeterministic } from '../../src/index.js';
import type { Arch, PeftOptions } from '../../src/model.js';
import { stateDictToMap, type StateDict, type StateEntry } from '../../src/state-dict.js';
import { randomTask, range } from '../helpers/synthetic.js';

const want = process.env.BTM_TEST_CUDA === '1';
const have = cudaAvailable();
const C = 4;

describe('PEFT on CUDA requested (BTM_TEST_CUDA=1)', () => {
  it.skipIf(!want)('a GPU is visible', () => expect(have).toBe(true));
});

const bytes = (e: StateEntry) => Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength);
function changed(a: StateDict, b: StateDict): string[] {
  const bm = stateDictToMap(b);
  return a.filter((e) => !bytes(e).equals(bytes(bm.get(e.name)!))).map((e) => e.name);
}
const maxAbs = (a: ArrayLike<number>) => Array.from(a).reduce((m, v) => Math.max(m, Math.abs(v)), 0);
function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}
function relL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let n = 0, d = 0;
  for (let i = 0; i < a.length; i++) {
    n += (a[i] - b[i]) ** 2;
    d += b[i] ** 2;
  }
  return Math.sqrt(n / Math.max(d, 1e-30));
}

interface Case { arch: Arch; peft: PeftOptions; load: PeftOptions; frozen: RegExp }
const CASES: Case[] = [
  {
    arch: 'vit_mini_p4',
    peft: { modules: ['lora', 'ssf', 'adaptformer', 'bitfit'], rank: 4, bottleneck: 8, head: 'cosine' },
    load: { modules: ['adaptformer'], bottleneck: 8, head: 'cosine' },
    frozen: /class_token|pos_embedding/,
  },
  {
    arch: 'resnet8',
    peft: { modules: ['ssf', 'adapter', 'bitfit'] },
    load: { modules: ['adapter'] },
    frozen: /conv\d\.weight$|running_(mean|var)$/,
  },
];

describe.skipIf(!have)('PEFT on CUDA', () => {
  for (const c of CASES) {
    it(`${c.arch}: no-op at attach, only chosen tensors move, export loads on the CPU, CPU and CUDA agree`, async () => {
      setCudaDeterministic(true);
      const src = randomTask({ n: 32, numClasses: C, size: 8, channels: 1, seed: 4 });
      const make = (device: 'cpu' | 'cuda') => new Model({ arch: c.arch, numClasses: C, inChannels: 1, imageSize: c.arch.startsWith('vit') ? 8 : undefined, seed: 4, device });
      const results: Record<string, Float32Array> = {};
      for (const device of ['cuda', 'cpu'] as const) {
        using ds = new Dataset(src, device);
        using m = make(device);
        m.setOptimizer({ trainable: 'all' });
        await m.trainEpoch(ds, range(16), { lr: 0.05, batchSize: 8 });
        const plain = (await m.evaluate(ds, { logits: true })).logits!;
        const before = m.stateDict();
        m.setPeft({ ...c.peft, head: 'linear' } as PeftOptions);
        expect(Array.from((await m.evaluate(ds, { logits: true })).logits!)).toEqual(Array.from(plain));
        using p = make(device);
        p.loadStateDict(before);
        p.setPeft(c.peft);
        p.setOptimizer({ trainable: 'peft' });
        for (let e = 0; e < 2; e++) await p.trainEpoch(ds, range(32), { lr: 0.05, batchSize: 8 });
        const after = p.stateDict();
        for (const n of changed(after.filter((e) => before.some((b) => b.name === e.name)), before)) expect(n).not.toMatch(c.frozen);
        const live = (await p.evaluate(ds, { logits: true })).logits!;
        results[device] = live;
        if (device === 'cuda') {
          using back = make('cpu');
          back.setPeft(c.load);
          back.loadStateDict(after);
          using cpuDs = new Dataset(src);
          const onCpu = (await back.evaluate(cpuDs, { logits: true })).logits!;
          const d = maxAbsDiff(onCpu, live);
          console.log(`[peft cuda ${c.arch}] export on CPU vs live CUDA: max abs diff ${d.toExponential(3)} (max |logit| ${maxAbs(live).toPrecision(4)})`);
          expect(d).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(live)));
        }
      }
      const r = relL2(results.cuda, results.cpu);
      console.log(`[peft cuda ${c.arch}] CUDA vs CPU training, relative L2 of logits ${r.toExponential(3)}`);
      expect(r).toBeLessThanOrEqual(1e-3);
    }, 300_000);
  }
});
