// btm.parallel: a BTM stage whose fine-tunes run in groups, killed after the first group and resumed,
// ends exactly where the uninterrupted run with all members at once ends (a member's arithmetic does
// not depend on which members share its native call), and the one-at-a-time loop (parallel 1) agrees
// to float tolerance.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bytesOf } from './helpers/synthetic.js';
import { readCheckpoint } from '../src/checkpoint.js';
import { runPipeline } from '../src/pipeline/run.js';
import { deepMerge, presetConfig } from '../src/presets.js';

const root = mkdtempSync(join(tmpdir(), 'btm-parallel-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function config(name: string, parallel?: number, stacked: boolean | 'auto' = 'auto') {
  return deepMerge(presetConfig('btm'), {
    name,
    runDir: root,
    seed: 4,
    pipeline: ['pretrain', 'btm'],
    data: { dataset: 'synthetic', imbalanceFactor: 10, synthetic: { numClasses: 4, size: 16, trainPerClass: 120, testPerClass: 30 } },
    model: { arch: 'resnet8' },
    pretrain: { epochs: 2, batchSize: 32, warmupEpochs: 0 },
    btm: { epochs: 3, numSubsets: 3, perClass: 8, batchSize: 8, merge: 'adaptive-hmean', parallel, stacked },
  });
}

describe('btm.parallel', () => {
  it('a run killed inside the batched BTM stage resumes to the uninterrupted result', async () => {
    const whole = await runPipeline(config('whole'));
    const c = new AbortController();
    const cut = await runPipeline(config('cut', 2), {
      signal: c.signal,
      onProgress: (e) => {
        if (e.type === 'train' && e.step === 'btm-2') c.abort(); // the second group: members 0 and 1 are done
      },
    });
    expect(cut.status).toBe('interrupted');
    const state = JSON.parse(readFileSync(join(cut.dir, 'state.json'), 'utf8'));
    expect(state.finished).toEqual(['pretrain', 'btm-0', 'btm-1']);
    const resumed = await runPipeline(config('cut', 2), { resume: true });
    expect(resumed.status).toBe('complete');
    const strip = (rows: typeof whole.rows) => rows.map(({ trainSeconds: _t, ...rest }) => rest);
    expect(strip(resumed.rows)).toEqual(strip(whole.rows));
    for (const file of ['btm/finetune-0.safetensors', 'btm/finetune-2.safetensors', 'btm/merged.safetensors']) {
      const a = (await readCheckpoint(join(whole.dir, file))).state, b = (await readCheckpoint(join(resumed.dir, file))).state;
      expect(b.map((e) => e.name)).toEqual(a.map((e) => e.name));
      for (let i = 0; i < a.length; i++) expect(bytesOf(b[i].data).equals(bytesOf(a[i].data)), `${file} ${a[i].name}`).toBe(true);
    }

    // largest |a - b| / (1e-3 + |b|) over the float tensors of the whole run's merged model (a) and dir's
    const a = (await readCheckpoint(join(whole.dir, 'btm/merged.safetensors'))).state;
    const worstAgainst = async (dir: string) => {
      const b = new Map((await readCheckpoint(join(dir, 'btm/merged.safetensors'))).state.map((e) => [e.name, e]));
      let worst = 0;
      for (const e of a) {
        if (!(e.data instanceof Float32Array)) continue;
        const y = b.get(e.name)!.data as Float32Array;
        for (let i = 0; i < y.length; i++) worst = Math.max(worst, Math.abs(e.data[i] - y[i]) / (1e-3 + Math.abs(y[i])));
      }
      return worst;
    };

    // the one-at-a-time loop: same members to float tolerance (see test/native/member-group.test.ts)
    const seq = await runPipeline(config('sequential', 1));
    expect(await worstAgainst(seq.dir)).toBeLessThan(1e-3);

    // btm.stacked: the members as one grouped network (the CUDA default), asked for on the CPU: the
    // same merged model to float tolerance, and as many rows
    const stacked = await runPipeline(config('stacked', undefined, true));
    expect(await worstAgainst(stacked.dir)).toBeLessThan(1e-3);
    expect(stacked.rows.length).toBe(whole.rows.length);
  });
});
