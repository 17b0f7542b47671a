// End to end on generated data: a whole BTM run, the files it leaves, and resuming an interrupted run.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { bytesOf } from './helpers/synthetic.js';
import { loadModel, evaluate } from '../src/classifier.js';
import { readCheckpoint } from '../src/checkpoint.js';
import { loadImageSets } from '../src/pipeline/data.js';
import type { ProgressEvent } from '../src/pipeline/context.js';
import { runPipeline } from '../src/pipeline/run.js';
import { deepMerge, presetConfig } from '../src/presets.js';

const root = mkdtempSync(join(tmpdir(), 'btm-pipeline-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A tiny btm run: 4 synthetic classes, IF 10, resnet8, a few epochs of everything. */
function tinyConfig(name: string, patch: object = {}) {
  return deepMerge(presetConfig('btm'), {
    name,
    runDir: root,
    seed: 3,
    data: { dataset: 'synthetic', imbalanceFactor: 10, synthetic: { numClasses: 4, size: 16, trainPerClass: 120, testPerClass: 30 } },
    model: { arch: 'resnet8' },
    pretrain: { epochs: 4, batchSize: 32, warmupEpochs: 0 },
    btm: { epochs: 3, numSubsets: 3, perClass: 8, batchSize: 8 },
    posttrain: { epochs: 2, batchSize: 32 },
    ...patch,
  });
}

describe('runPipeline', () => {
  it('runs pretrain -> btm -> posttrain, writes checkpoints, results and charts, and improves the worst classes', async () => {
    const events: ProgressEvent[] = [];
    const r = await runPipeline(tinyConfig('full'), { onProgress: (e) => events.push(e) });
    expect(r.status).toBe('complete');
    expect(r.rows.map((x) => x.step)).toEqual(['pretrain', 'btm-0', 'btm-1', 'btm-2', 'btm-merge', 'posttrain']);
    for (const f of ['config.json', 'split.txt', 'state.json', 'results.json', 'recall.svg', 'recall.png', 'pretrain.safetensors',
      'posttrain.safetensors', 'btm/merged.safetensors', 'btm/finetune-2.safetensors', 'btm/subset-0.txt']) {
      expect(existsSync(join(r.dir, f)), f).toBe(true);
    }
    const results = JSON.parse(readFileSync(join(r.dir, 'results.json'), 'utf8'));
    expect(results.status).toBe('complete');
    expect(results.split.counts).toEqual([120, 55, 25, 12]); // floor(120 * 0.1^(i/3))
    expect(results.rows[0].perClassRecall).toHaveLength(4);
    expect(Object.keys(results.timings)).toContain('btm-merge');
    // the split file lists exactly the split
    const lines = readFileSync(join(r.dir, 'split.txt'), 'utf8').trim().split('\n').filter((l) => !l.startsWith('#'));
    expect(lines.length).toBe(120 + 55 + 25 + 12);
    // each subset holds perClass images of every class
    const subset = readFileSync(join(r.dir, 'btm/subset-0.txt'), 'utf8').trim().split('\n').filter((l) => !l.startsWith('#'));
    expect(subset.length).toBe(4 * 8);
    // progress was reported
    expect(events.some((e) => e.type === 'train')).toBe(true);
    expect(events.filter((e) => e.type === 'row')).toHaveLength(6);
    // the post-trained model is not worse than the pre-trained one on the worst classes (learnable task)
    const first = r.rows[0], last = r.rows[r.rows.length - 1];
    expect(last.harmonicMean).toBeGreaterThanOrEqual(first.harmonicMean);
    // the final checkpoint loads as a Classifier and reproduces the reported accuracy
    const clf = await loadModel(r.checkpoint!);
    const { test } = await loadImageSets(results.config.data, results.config.seed);
    const s = await evaluate(clf, test);
    expect(s.accuracy).toBeCloseTo(last.accuracy, 10);
    clf.dispose();
    // the merged checkpoint is the average of the fine-tunes (BTM: uniform merge)
    const merged = (await readCheckpoint(join(r.dir, 'btm/merged.safetensors'))).state;
    const parts = await Promise.all([0, 1, 2].map(async (k) => (await readCheckpoint(join(r.dir, `btm/finetune-${k}.safetensors`))).state));
    const w = merged.findIndex((e) => e.name === 'layer1.0.conv1.weight');
    const avg = (merged[w].data as Float32Array).map((_, i) => parts.reduce((a, p) => a + (p[w].data as Float32Array)[i], 0) / 3);
    for (let i = 0; i < avg.length; i += 37) expect((merged[w].data as Float32Array)[i]).toBeCloseTo(avg[i], 6);
  });

  it('an interrupted run resumes to the same result as an uninterrupted one', async () => {
    const whole = await runPipeline(tinyConfig('whole'));
    // interrupt during the third pre-training epoch (after two finished epochs were checkpointed)
    const controller = new AbortController();
    const first = await runPipeline(tinyConfig('cut'), {
      signal: controller.signal,
      onProgress: (e) => {
        if (e.type === 'train' && e.step === 'pretrain' && e.epoch === 3) controller.abort();
      },
    });
    expect(first.status).toBe('interrupted');
    const state = JSON.parse(readFileSync(join(first.dir, 'state.json'), 'utf8'));
    expect(state.partial).toMatchObject({ step: 'pretrain', epoch: 1 });
    expect(state.finished).toEqual([]);
    // a second interruption inside BTM, after one fine-tune
    const c2 = new AbortController();
    const second = await runPipeline(tinyConfig('cut'), {
      resume: true,
      signal: c2.signal,
      onProgress: (e) => {
        if (e.type === 'train' && e.step === 'btm-1') c2.abort();
      },
    });
    expect(second.status).toBe('interrupted');
    const third = await runPipeline(tinyConfig('cut'), { resume: true });
    expect(third.status).toBe('complete');
    const strip = (rows: typeof whole.rows) => rows.map(({ trainSeconds: _t, ...rest }) => rest);
    expect(strip(third.rows)).toEqual(strip(whole.rows));
    const a = (await readCheckpoint(whole.checkpoint!)).state, b = (await readCheckpoint(third.checkpoint!)).state;
    for (let i = 0; i < a.length; i++) expect(bytesOf(b[i].data).equals(bytesOf(a[i].data)), a[i].name).toBe(true);
  });

  it('refuses to overwrite an existing run and to resume a missing one', async () => {
    await expect(runPipeline(tinyConfig('full'))).rejects.toThrow(/already holds a run: pass --resume/);
    await expect(runPipeline(tinyConfig('nothing-here'), { resume: true })).rejects.toThrow(/holds no run to resume/);
  });

  it('greedy and adaptive merges, a backbone-only BTM, and the GML / logit-adjusted losses run and record their choice', async () => {
    const greedy = await runPipeline(tinyConfig('greedy', { btm: { epochs: 2, numSubsets: 3, perClass: 8, batchSize: 8, merge: 'greedy-hmean', trainable: 'backbone' }, posttrain: { epochs: 1, batchSize: 32, loss: { type: 'gml' } } }));
    expect(greedy.status).toBe('complete');
    const state = JSON.parse(readFileSync(join(greedy.dir, 'state.json'), 'utf8'));
    expect(Object.keys(state.scores)).toEqual(['btm-0', 'btm-1', 'btm-2']);
    const merged = await readCheckpoint(join(greedy.dir, 'btm/merged.safetensors'));
    expect(merged.metadata.strategy).toBe('greedy-hmean');
    expect(merged.metadata.members.split(',').length).toBeGreaterThanOrEqual(1);
    // backbone-only fine-tunes leave fc exactly as pre-trained
    const pre = (await readCheckpoint(join(greedy.dir, 'pretrain.safetensors'))).state;
    const ft = (await readCheckpoint(join(greedy.dir, 'btm/finetune-0.safetensors'))).state;
    const fcw = pre.findIndex((e) => e.name === 'fc.weight');
    expect(bytesOf(ft[fcw].data).equals(bytesOf(pre[fcw].data))).toBe(true);
    const adaptive = await runPipeline(tinyConfig('adaptive', { pretrain: { epochs: 2, batchSize: 32, loss: { type: 'logit-adjust', tau: 1 } }, btm: { epochs: 2, numSubsets: 2, perClass: 8, batchSize: 8, merge: 'adaptive-gmean' } }));
    expect(adaptive.status).toBe('complete');
    expect((await readCheckpoint(join(adaptive.dir, 'btm/merged.safetensors'))).metadata.strategy).toBe('adaptive-gmean');
  });

  it('runs the other presets on the same data', async () => {
    for (const preset of ['crt', 'btm-fc'] as const) {
      const cfg = deepMerge(tinyConfig(`p-${preset}`), { pipeline: presetConfig(preset).pipeline, fc: { epochs: 1, batchSize: 32 } });
      const r = await runPipeline(cfg);
      expect(r.status).toBe('complete');
      expect(r.rows[r.rows.length - 1].step).toBe('posttrain');
    }
  });
});
