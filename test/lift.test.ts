// LIFT on the TypeScript side (src/lift.ts) and its presets, end to end on generated data:
//  - the cosine head's initial rows equal the L2-normalised class means of the frozen features
//    (recomputed here in float64 from evaluate's features), and its logits are 25 cos(f, mean_c);
//  - the lift preset (pretrain -> lift) runs: the lift checkpoint records its modules, the trunk's
//    convolutions and BatchNorm statistics are bit-identical to the pre-trained ones (frozen; BN in eval
//    mode), btm-node loads the checkpoint back (adapters attached from the metadata) with the run's
//    predictions, and `btm info` names the modules;
//  - the lift-btm preset (pretrain -> btm over the PEFT parameters) runs and merges.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { evaluate, loadModel } from '../src/classifier.js';
import { loadImageSets } from '../src/pipeline/data.js';
import { checkpointSummary, readCheckpoint } from '../src/checkpoint.js';
import { parseConfig } from '../src/config.js';
import { Dataset } from '../src/dataset.js';
import { formatPeft, initHeadFromClassMeans, peftForLoading } from '../src/lift.js';
import { Model } from '../src/model.js';
import { runPipeline } from '../src/pipeline/run.js';
import { deepMerge, presetConfig } from '../src/presets.js';
import { stateDictToMap } from '../src/state-dict.js';
import { randomTask } from './helpers/synthetic.js';

const root = mkdtempSync(join(tmpdir(), 'btm-lift-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('cosine head from class means', () => {
  it('rows are the normalised class means of the frozen features; logits are 25 cos(f, mean_c)', async () => {
    const C = 3;
    const src = randomTask({ n: 30, numClasses: C, size: 8, channels: 1, seed: 5 });
    using ds = new Dataset(src);
    using m = new Model({ arch: 'resnet8', numClasses: C, inChannels: 1, seed: 5 });
    m.setPeft({ modules: ['ssf', 'adapter'], head: 'cosine' });
    const idx = Int32Array.from({ length: 24 }, (_, i) => i + 3); // not every sample
    const rows = await initHeadFromClassMeans(m, ds, idx, src.labels);
    const ev = await m.evaluate(ds, { features: true, logits: true });
    const D = ev.featureDim;
    // float64 reference
    const ref: number[][] = Array.from({ length: C }, () => new Array(D).fill(0));
    const cnt = new Array(C).fill(0);
    for (const i of idx) {
      cnt[src.labels[i]]++;
      for (let d = 0; d < D; d++) ref[src.labels[i]][d] += ev.features![i * D + d];
    }
    const head = stateDictToMap(m.stateDict()).get('fc.weight')!.data as Float32Array;
    for (let c = 0; c < C; c++) {
      const mean = ref[c].map((v) => v / cnt[c]);
      const norm = Math.hypot(...mean);
      for (let d = 0; d < D; d++) {
        expect(Math.abs(rows[c * D + d] - mean[d] / norm)).toBeLessThan(1e-6);
        expect(Math.abs(head[c * D + d] / 25 - mean[d] / norm)).toBeLessThan(1e-6); // exported as 25 W_n
      }
    }
    for (let i = 0; i < 30; i++) {
      const f = ev.features!.subarray(i * D, (i + 1) * D);
      const fn = Math.hypot(...f);
      for (let c = 0; c < C; c++) {
        let dot = 0;
        for (let d = 0; d < D; d++) dot += f[d] * rows[c * D + d];
        expect(Math.abs(ev.logits![i * C + c] - (25 * dot) / fn)).toBeLessThan(1e-4);
      }
    }
    expect(Array.from(stateDictToMap(m.stateDict()).get('fc.bias')!.data)).toEqual([0, 0, 0]);
  });
});

describe('presets', () => {
  const tiny = (method: 'lift' | 'lift-btm', name: string, patch: object = {}) => deepMerge(presetConfig(method), {
    name,
    runDir: root,
    seed: 2,
    data: { dataset: 'synthetic', imbalanceFactor: 10, synthetic: { numClasses: 4, size: 16, trainPerClass: 100, testPerClass: 20 } },
    model: { arch: 'resnet8' },
    pretrain: { epochs: 3, batchSize: 32, warmupEpochs: 0 },
    lift: { epochs: 2, batchSize: 32, lr: 0.05 },
    btm: { epochs: 2, numSubsets: 2, perClass: 6, batchSize: 8 },
    ...patch,
  });

  it('the lift preset config: frozen trunk + modules + cosine head + LA loss, 10 epochs', () => {
    const c = parseConfig(presetConfig('lift'));
    expect(c.pipeline).toEqual(['pretrain', 'lift']);
    expect(c.lift).toMatchObject({ epochs: 10, lr: 0.01, head: 'cosine', cosineScale: 25, headInit: 'class-means', loss: { type: 'logit-adjust', tau: 1 } });
    expect(parseConfig(presetConfig('lift-btm')).btm.trainable).toBe('peft');
    expect(() => parseConfig({ ...presetConfig('lift'), lift: { ...presetConfig('lift').lift, modules: ['prompt'] } })).toThrow(/config\.lift\.modules\.0/);
  });

  it('lift runs end to end: trunk frozen, checkpoint loads back with its adapters, info names the modules', async () => {
    const r = await runPipeline(tiny('lift', 'lift'));
    expect(r.status).toBe('complete');
    expect(r.rows.map((x) => x.step)).toEqual(['pretrain', 'lift']);
    const pre = await readCheckpoint(join(r.dir, 'pretrain.safetensors'));
    const post = await readCheckpoint(join(r.dir, 'lift.safetensors'));
    expect(post.meta.peft).toEqual({ modules: ['ssf', 'adapter'], head: 'cosine', cosineScale: 25 });
    const pm = stateDictToMap(pre.state);
    for (const e of post.state) {
      if (/conv\d?\.weight$|downsample\.0\.weight$|running_(mean|var)$|num_batches_tracked$/.test(e.name)) {
        expect(Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength).equals(
          Buffer.from(pm.get(e.name)!.data.buffer, pm.get(e.name)!.data.byteOffset, pm.get(e.name)!.data.byteLength)), e.name).toBe(true);
      }
    }
    expect(post.state.filter((e) => e.name.endsWith('.adapter.weight'))).toHaveLength(3);
    expect(peftForLoading(post.meta.peft)).toEqual({ modules: ['adapter'], head: 'cosine', cosineScale: 25 });
    // loads back (adapters attached from the metadata) and predicts what the run measured
    using clf = await loadModel(join(r.dir, 'lift.safetensors'));
    expect(clf.model.peft?.modules).toEqual(['adapter']);
    const config = parseConfig(tiny('lift', 'lift'));
    const { test } = await loadImageSets(config.data, config.seed);
    expect((await evaluate(clf, test)).accuracy).toBeCloseTo(r.rows[1].accuracy, 10);
    const s = await checkpointSummary(join(r.dir, 'lift.safetensors'));
    expect(formatPeft(s.peft!)).toBe('ssf merged into the weights; adapter stored as extra tensors (btm-node attaches them on load); cosine head (scale 25), stored as the linear head s W/|W|');
  }, 300_000);

  it('lift-btm runs end to end: PEFT fine-tunes on balanced subsets, merged', async () => {
    const r = await runPipeline(tiny('lift-btm', 'lift-btm', { lift: { epochs: 1, lr: 0.01, modules: ['bitfit', 'adapter'] } }));
    expect(r.status).toBe('complete');
    expect(r.rows.map((x) => x.step)).toEqual(['pretrain', 'btm-0', 'btm-1', 'btm-merge']);
    const pre = stateDictToMap((await readCheckpoint(join(r.dir, 'pretrain.safetensors'))).state);
    const merged = await readCheckpoint(join(r.dir, 'btm', 'merged.safetensors'));
    expect(merged.meta.peft?.modules).toEqual(['bitfit', 'adapter']);
    // convolutions stay the pre-trained ones in every member, so in the average too (to rounding)
    const w = merged.state.find((e) => e.name === 'layer2.0.conv1.weight')!.data as Float32Array;
    const w0 = pre.get('layer2.0.conv1.weight')!.data as Float32Array;
    let d = 0;
    for (let i = 0; i < w.length; i++) d = Math.max(d, Math.abs(w[i] - w0[i]));
    expect(d).toBeLessThanOrEqual(1e-6 * Math.max(...Array.from(w0, Math.abs)));
  }, 300_000);
});
