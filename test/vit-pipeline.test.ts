// A ViT through the whole pipeline on generated data: pretrain -> btm -> posttrain completes, and the
// final checkpoint loads with loadModel (arch, image size and weights as trained).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel } from '../src/classifier.js';
import { readCheckpoint } from '../src/checkpoint.js';
import { runPipeline } from '../src/pipeline/run.js';
import { deepMerge, presetConfig } from '../src/presets.js';

const root = mkdtempSync(join(tmpdir(), 'btm-vit-pipeline-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('runPipeline with a ViT', () => {
  it('vit_mini_p4: pretrain -> btm -> posttrain on 16x16 synthetic data; the checkpoint serves', async () => {
    const config = deepMerge(presetConfig('btm'), {
      name: 'vit', runDir: root, seed: 1,
      data: { dataset: 'synthetic', imbalanceFactor: 10, synthetic: { numClasses: 4, size: 16, trainPerClass: 60, testPerClass: 10 } },
      model: { arch: 'vit_mini_p4' },
      pretrain: { epochs: 2, lr: 0.01, batchSize: 16, warmupEpochs: 1 },
      btm: { epochs: 1, lr: 0.005, numSubsets: 2, perClass: 4, batchSize: 8 },
      posttrain: { epochs: 1, lr: 0.01, batchSize: 16 },
    });
    const r = await runPipeline(config);
    expect(r.status).toBe('complete');
    expect(r.rows.map((x) => x.step)).toEqual(['pretrain', 'btm-0', 'btm-1', 'btm-merge', 'posttrain']);
    const { meta, state } = await readCheckpoint(join(r.dir, 'posttrain.safetensors'));
    expect(meta).toMatchObject({ arch: 'vit_mini_p4', imageSize: 16, inChannels: 1, numClasses: 4 });
    expect(state.map((e) => e.name)).toContain('encoder.layers.encoder_layer_5.mlp.3.weight');
    using c = await loadModel(join(r.dir, 'posttrain.safetensors'));
    const p = await c.predict(new Uint8Array(2 * 16 * 16), { logits: true });
    expect(p.logits).toHaveLength(8);
  }, 300_000);
});
