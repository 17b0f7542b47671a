// Checkpoints from the PyTorch world (src/checkpoint-import.ts): plain safetensors state dicts with
// torchvision's or timm's names as --model.init and in loadModel.
//  - the timm -> torchvision name map agrees with names and shapes pinned by hand from timm's source
//    (test/fixtures/timm-keys.ts), for vit_base_patch16_224 and resnet50, against btm-node's own models;
//  - a timm-named ViT (built from a torchvision-named one through the fixture's pairs, not the map)
//    loads and gives the torchvision-named original's logits bit for bit;
//  - unmatched / missing names and shape mismatches are errors that list the names and count them;
//  - --model.init with a plain file: input channels converted as timm does, a head for other classes
//    kept from the model, the result checked tensor by tensor; a bad file is refused before the run
//    directory is written.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { adaptInputConv, detectLayout, timmVitName } from '../src/checkpoint-import.js';
import { readCheckpoint } from '../src/checkpoint.js';
import { loadModel } from '../src/classifier.js';
import { Dataset } from '../src/dataset.js';
import { Model } from '../src/model.js';
import { runPipeline } from '../src/pipeline/run.js';
import { deepMerge, presetConfig } from '../src/presets.js';
import { writeSafetensors } from '../src/safetensors.js';
import { stateDictToMap, type StateDict } from '../src/state-dict.js';
import { TIMM_RESNET50_KEYS, TIMM_VIT_B16_KEYS } from './fixtures/timm-keys.js';
import { patternSource } from './helpers/synthetic.js';

const root = mkdtempSync(join(tmpdir(), 'btm-import-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The timm name of a torchvision ViT name, from the fixture's block-0 pairs (block index substituted). */
function timmNameFromFixture(name: string): string {
  const m = /^encoder\.layers\.encoder_layer_(\d+)\./.exec(name);
  const block0 = m ? name.replace(`encoder_layer_${m[1]}.`, 'encoder_layer_0.') : name;
  const key = TIMM_VIT_B16_KEYS.find((k) => k.torchvision === block0);
  if (!key) throw new Error(`fixture has no timm name for ${name}`);
  return m ? key.timm.replace(/^blocks\.0\./, `blocks.${m[1]}.`) : key.timm;
}

function toTimm(state: StateDict): StateDict {
  return state.map((e) => ({ ...e, name: timmNameFromFixture(e.name) }));
}

async function logitsOf(model: Model, n = 6): Promise<Float32Array> {
  const { inChannels, imageSize, numClasses } = model.info;
  using ds = new Dataset(patternSource(n, inChannels, imageSize, imageSize, numClasses));
  return (await model.evaluate(ds, { logits: true })).logits!;
}

describe('timm name map, pinned from timm source', () => {
  it('maps every pinned vit_base_patch16_224 name to the torchvision name, with btm-node vit_b_16 shapes', () => {
    for (const k of TIMM_VIT_B16_KEYS) expect(timmVitName(k.timm), k.timm).toBe(k.torchvision);
    expect(detectLayout(TIMM_VIT_B16_KEYS.map((k) => k.timm))).toBe('timm');
    expect(detectLayout(TIMM_VIT_B16_KEYS.map((k) => k.torchvision))).toBe('torchvision');
    using m = new Model({ arch: 'vit_b_16', numClasses: 1000 });
    const byName = stateDictToMap(m.stateDict());
    for (const k of TIMM_VIT_B16_KEYS) expect(byName.get(k.torchvision)?.shape, k.timm).toEqual(k.shape);
  });

  it('timm resnet50 names are torchvision names with the same shapes', () => {
    expect(detectLayout(TIMM_RESNET50_KEYS.map((k) => k.timm))).toBe('torchvision');
    using m = new Model({ arch: 'resnet50', numClasses: 1000 });
    const byName = stateDictToMap(m.stateDict());
    for (const k of TIMM_RESNET50_KEYS) {
      expect(k.timm).toBe(k.torchvision);
      expect(byName.get(k.torchvision)?.shape, k.timm).toEqual(k.shape);
    }
  });
});

describe('loadModel with a plain state dict', () => {
  it('a timm-named ViT gives the torchvision-named original logits, bit for bit', async () => {
    using orig = new Model({ arch: 'vit_mini_p4', numClasses: 10, inChannels: 1, imageSize: 28, seed: 3 });
    const file = join(root, 'timm-vit.safetensors');
    await writeSafetensors(file, toTimm(orig.stateDict()));
    const want = await logitsOf(orig);
    for (const format of ['auto', 'timm'] as const) {
      using c = await loadModel(file, { arch: 'vit_mini_p4', imageSize: 28, format });
      expect(c.meta).toMatchObject({ arch: 'vit_mini_p4', numClasses: 10, inChannels: 1, imageSize: 28 });
      expect(Array.from(await logitsOf(c.model))).toEqual(Array.from(want));
    }
    // read as torchvision names: every timm name is unmatched, every parameter missing
    await expect(loadModel(file, { arch: 'vit_mini_p4', imageSize: 28, format: 'torchvision' })).rejects.toThrow(
      /the torchvision-named checkpoint does not match vit_mini_p4\n {2}80 tensor name\(s\) of the file match no parameter of the model: 'cls_token', 'patch_embed.proj.weight', .*\(72 more\)\n {2}80 parameter\(s\) of the model are not in the file: 'class_token', .*\n.*look like timm's: use model.initFormat \(loadModel's format\) 'timm' or 'auto'/,
    );
  });

  it('a torchvision-named ResNet without metadata loads given arch; without arch the error says so', async () => {
    using orig = new Model({ arch: 'resnet8', numClasses: 5, inChannels: 3, seed: 4 });
    const file = join(root, 'tv-resnet.safetensors');
    await writeSafetensors(file, orig.stateDict());
    using c = await loadModel(file, { arch: 'resnet8', imageSize: 16 });
    expect(c.meta).toMatchObject({ numClasses: 5, inChannels: 3, imageSize: 16 });
    using ds = new Dataset(patternSource(4, 3, 16, 16, 5));
    const a = (await orig.evaluate(ds, { logits: true })).logits!;
    const b = (await c.model.evaluate(ds, { logits: true })).logits!;
    expect(Array.from(b)).toEqual(Array.from(a));
    await expect(loadModel(file)).rejects.toThrow(/no btm-node model metadata: read as a plain torchvision-named state dict, it needs the architecture: loadModel\(file, \{ arch: \.\.\. \}\)/);
    await expect(loadModel(file, { format: 'btm-node' })).rejects.toThrow(/no btm-node model metadata \(__metadata__\.model\)/);
  });

  it('unmatched, missing and mismatched names are listed and counted', async () => {
    using orig = new Model({ arch: 'vit_mini_p4', numClasses: 10, inChannels: 1, imageSize: 28, seed: 3 });
    const timm = toTimm(orig.stateDict());
    const extra: StateDict = [
      { name: 'norm_pre.weight', shape: [128], dtype: 'float32', data: new Float32Array(128) },
      { name: 'norm_pre.bias', shape: [128], dtype: 'float32', data: new Float32Array(128) },
    ];
    const f1 = join(root, 'extra.safetensors');
    await writeSafetensors(f1, [...timm, ...extra]);
    await expect(loadModel(f1, { arch: 'vit_mini_p4', imageSize: 28 })).rejects.toThrow(
      /2 tensor name\(s\) of the file match no parameter of the model: 'norm_pre.weight', 'norm_pre.bias'\n {2}\(timm's pre-norm after the embedding \(pre_norm=True, CLIP models\)/,
    );
    const f2 = join(root, 'missing.safetensors');
    await writeSafetensors(f2, timm.filter((e) => e.name !== 'blocks.3.mlp.fc2.weight'));
    await expect(loadModel(f2, { arch: 'vit_mini_p4', imageSize: 28 })).rejects.toThrow(
      /1 parameter\(s\) of the model are not in the file: 'encoder.layers.encoder_layer_3.mlp.3.weight'$/,
    );
    // a checkpoint for another image size: the position embedding does not fit
    await expect(loadModel(join(root, 'timm-vit.safetensors'), { arch: 'vit_mini_p4', imageSize: 32 })).rejects.toThrow(
      /1 shape mismatch\(es\): 'encoder.pos_embedding': \[1, 50, 128\] float32 in the file, the model needs \[1, 65, 128\] float32 \(a checkpoint for another image size or patch/,
    );
  });
});

describe('input channels as timm converts them', () => {
  it('1 channel: the sum of the RGB filters; 4 channels: RGB repeated times 3/4', () => {
    const w = Float32Array.from({ length: 2 * 3 * 2 * 2 }, (_, i) => i); // [2, 3, 2, 2]
    expect(Array.from(adaptInputConv(w, [2, 3, 2, 2], 1))).toEqual([0 + 4 + 8, 1 + 5 + 9, 2 + 6 + 10, 3 + 7 + 11, 12 + 16 + 20, 13 + 17 + 21, 14 + 18 + 22, 15 + 19 + 23]);
    const four = adaptInputConv(w, [2, 3, 2, 2], 4);
    expect(Array.from(four.subarray(0, 16))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3].map((v) => Math.fround(v * 0.75)));
  });
});

describe('--model.init with a plain checkpoint', () => {
  const config = (name: string, init: string, patch: object = {}) => deepMerge(presetConfig('crt'), {
    name, runDir: root, seed: 1, pipeline: ['fc'],
    data: { dataset: 'synthetic', imbalanceFactor: 5, synthetic: { numClasses: 4, size: 16, trainPerClass: 40, testPerClass: 10 } },
    model: { arch: 'resnet8', init },
    fc: { epochs: 0 },
    ...patch,
  });

  it('converts a 3-channel, 7-class file for a 1-channel, 4-class run: conv1 summed, head kept, the rest as in the file', async () => {
    using src = new Model({ arch: 'resnet8', numClasses: 7, inChannels: 3, seed: 9 });
    const file = join(root, 'rgb7.safetensors');
    await writeSafetensors(file, src.stateDict());
    const logs: string[] = [];
    const r = await runPipeline(config('plain-init', file), { onProgress: (e) => { if (e.type === 'log') logs.push(e.message); } });
    expect(r.status).toBe('complete');
    expect(r.rows.map((x) => x.step)).toEqual(['init', 'fc']);
    expect(logs.join('\n')).toMatch(/model.init: .*rgb7.safetensors read as a torchvision-named state dict; conv1.weight: 1 input channel\(s\) from the file's 3 \(the sum of the RGB filters, as timm\); the file's head \(fc.weight \[7, 64\]\) is for another number of classes: the model's own head is kept/);
    const got = stateDictToMap((await readCheckpoint(join(r.dir, 'fc.safetensors'))).state);
    const from = stateDictToMap(src.stateDict());
    using fresh = new Model({ arch: 'resnet8', numClasses: 4, inChannels: 1, imageSize: 16, seed: 1 });
    const freshHead = stateDictToMap(fresh.stateDict());
    for (const [name, e] of got) {
      if (name === 'conv1.weight') {
        expect(Array.from(e.data)).toEqual(Array.from(adaptInputConv(from.get(name)!.data as Float32Array, from.get(name)!.shape, 1)));
      } else if (name.startsWith('fc.')) {
        expect(Array.from(e.data), name).toEqual(Array.from(freshHead.get(name)!.data));
      } else {
        expect(Array.from(e.data as Float32Array), name).toEqual(Array.from(from.get(name)!.data as Float32Array));
      }
    }
  });

  it('a run interrupted before its first stage saved anything resumes from model.init, not from a fresh model', async () => {
    using src = new Model({ arch: 'resnet8', numClasses: 4, inChannels: 1, seed: 5 });
    const file = join(root, 'init-resume.safetensors');
    await writeSafetensors(file, src.stateDict());
    const patch = { fc: { epochs: 2, batchSize: 16 } };
    const whole = await runPipeline(config('resume-whole', file, patch));
    const controller = new AbortController();
    const cut = await runPipeline(config('resume-cut', file, patch), {
      signal: controller.signal,
      onProgress: (e) => { if (e.type === 'train' && e.step === 'fc' && e.epoch === 1) controller.abort(); },
    });
    expect(cut.status).toBe('interrupted');
    const state = JSON.parse(readFileSync(join(cut.dir, 'state.json'), 'utf8'));
    expect(state.finished).toEqual(['init']);
    expect(state.partial).toBeUndefined();
    const resumed = await runPipeline(config('resume-cut', file, patch), { resume: true });
    const strip = (rows: typeof whole.rows) => rows.map(({ trainSeconds: _t, ...rest }) => rest);
    expect(strip(resumed.rows)).toEqual(strip(whole.rows));
    const a = (await readCheckpoint(whole.checkpoint!)).state, b = (await readCheckpoint(resumed.checkpoint!)).state;
    for (let i = 0; i < a.length; i++) expect(Array.from(b[i].data as Float32Array), a[i].name).toEqual(Array.from(a[i].data as Float32Array));
  });

  it('a file that does not match is refused before the run directory is written', async () => {
    using src = new Model({ arch: 'resnet20', numClasses: 4, inChannels: 1, seed: 9 });
    const file = join(root, 'resnet20.safetensors');
    await writeSafetensors(file, src.stateDict());
    await expect(runPipeline(config('bad-init', file))).rejects.toThrow(
      /^model.init: .*resnet20.safetensors: the torchvision-named checkpoint does not match resnet8\n {2}\d+ tensor name\(s\) of the file match no parameter of the model: 'layer1.1.conv1.weight', .*more\)/,
    );
    expect(existsSync(join(root, 'bad-init'))).toBe(false);
  });
});
