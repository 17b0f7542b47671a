// End to end on generated data: a whole BTM run, the files it leaves, and resuming an interrupted run.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
import { saveCheckpoint } from '../src/checkpoint.js';
import { deviceCount } from '../src/device.js';
import { adaptiveWeights } from '../src/merge.js';
import { Model } from '../src/model.js';
import { formatSplitList } from '../src/sampling/longtail.js';
import { readMetrics, RUN_FORMAT_VERSION } from '../src/pipeline/run-state.js';
import type { StateDict } from '../src/state-dict.js';

/** sum_k w_k * state_k of one float tensor, element by element. */
function weightedAverage(states: StateDict[], index: number, weights: number[]): Float64Array {
  const n = states[0][index].data.length;
  const out = new Float64Array(n);
  states.forEach((st, k) => {
    const d = st[index].data as Float32Array;
    for (let i = 0; i < n; i++) out[i] += weights[k] * d[i];
  });
  return out;
}

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
    expect(results).toMatchObject({ format: 'btm-node-run', version: RUN_FORMAT_VERSION });
    expect(JSON.parse(readFileSync(join(r.dir, 'state.json'), 'utf8'))).toMatchObject({ format: 'btm-node-run', version: RUN_FORMAT_VERSION });
    expect(existsSync(join(r.dir, 'metrics.jsonl'))).toBe(true);
    expect(events.filter((e) => e.type === 'epoch')).toHaveLength(4 + 3 * 3 + 2);
    expect(events.filter((e) => e.type === 'eval')).toHaveLength(6);
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

  it('greedy and adaptive merges, a backbone-only BTM, and the GML / logit-adjusted losses are what ran', async () => {
    const greedy = await runPipeline(tinyConfig('greedy', { btm: { epochs: 2, numSubsets: 3, perClass: 8, batchSize: 8, merge: 'greedy-hmean', trainable: 'backbone' }, posttrain: { epochs: 1, batchSize: 32, loss: { type: 'gml' } } }));
    expect(greedy.status).toBe('complete');
    const state = JSON.parse(readFileSync(join(greedy.dir, 'state.json'), 'utf8'));
    expect(Object.keys(state.scores)).toEqual(['btm-0', 'btm-1', 'btm-2']);
    const merged = await readCheckpoint(join(greedy.dir, 'btm/merged.safetensors'));
    expect(merged.metadata.strategy).toBe('greedy-hmean');
    // the soup is the uniform average of exactly the members it records
    const members: number[] = state.merges['btm-merge'].members;
    expect(merged.metadata.members).toBe(members.join(','));
    expect(state.merges['btm-merge'].weights).toEqual(members.map(() => 1 / members.length));
    const fts = await Promise.all([0, 1, 2].map(async (k) => (await readCheckpoint(join(greedy.dir, `btm/finetune-${k}.safetensors`))).state));
    const conv = merged.state.findIndex((e) => e.name === 'layer1.0.conv1.weight');
    const soup = weightedAverage(members.map((k) => fts[k]), conv, members.map(() => 1 / members.length));
    for (let i = 0; i < soup.length; i += 17) expect((merged.state[conv].data as Float32Array)[i]).toBeCloseTo(soup[i], 6);
    // backbone-only fine-tunes leave fc exactly as pre-trained
    const pre = (await readCheckpoint(join(greedy.dir, 'pretrain.safetensors'))).state;
    const fcw = pre.findIndex((e) => e.name === 'fc.weight');
    expect(bytesOf(fts[0][fcw].data).equals(bytesOf(pre[fcw].data))).toBe(true);
    expect(bytesOf(fts[0][conv].data).equals(bytesOf(pre[conv].data))).toBe(false);
    // the loss each stage trained with, as the trainer passed it to the native core
    const lossOf = (dir: string) => new Map(readMetrics(dir).records.flatMap((r) => (r.kind === 'epoch' ? [[r.step, r.loss] as const] : [])));
    expect(Object.fromEntries(lossOf(greedy.dir))).toEqual({ pretrain: 'ce', 'btm-0': 'ce', 'btm-1': 'ce', 'btm-2': 'ce', posttrain: 'gml' });

    const adaptive = await runPipeline(tinyConfig('adaptive', { pretrain: { epochs: 2, batchSize: 32, loss: { type: 'logit-adjust', tau: 1 } }, btm: { epochs: 2, numSubsets: 2, perClass: 8, batchSize: 8, merge: 'adaptive-gmean' } }));
    expect(adaptive.status).toBe('complete');
    const am = await readCheckpoint(join(adaptive.dir, 'btm/merged.safetensors'));
    expect(am.metadata.strategy).toBe('adaptive-gmean');
    expect(lossOf(adaptive.dir).get('pretrain')).toBe('logit-adjust');
    expect(lossOf(adaptive.dir).get('posttrain')).toBe('las'); // the btm preset's post-training
    // the weights are the fine-tunes' G-means normalised, and the merged model is that weighted average
    const as = JSON.parse(readFileSync(join(adaptive.dir, 'state.json'), 'utf8'));
    const weights = adaptiveWeights([0, 1].map((k) => as.scores[`btm-${k}`].geometricMean));
    expect(as.merges['btm-merge']).toEqual({ strategy: 'adaptive-gmean', members: [0, 1], weights });
    expect(JSON.parse(readFileSync(join(adaptive.dir, 'results.json'), 'utf8')).merges['btm-merge'].weights).toEqual(weights);
    const aft = await Promise.all([0, 1].map(async (k) => (await readCheckpoint(join(adaptive.dir, `btm/finetune-${k}.safetensors`))).state));
    const expected = weightedAverage(aft, conv, weights);
    for (let i = 0; i < expected.length; i += 17) expect((am.state[conv].data as Float32Array)[i]).toBeCloseTo(expected[i], 6);
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

/** A run stopped (as by Ctrl-C) after `epochs` finished pre-training epochs. */
async function interruptedRun(name: string, epochs: number, patch: object = {}) {
  const c = new AbortController();
  const r = await runPipeline(tinyConfig(name, patch), {
    signal: c.signal,
    onProgress: (e) => {
      if (e.type === 'epoch' && e.step === 'pretrain' && e.epoch === epochs) c.abort();
    },
  });
  expect(r.status).toBe('interrupted');
  return r;
}

describe('metrics.jsonl', () => {
  it('holds a record per epoch and per evaluation; a resumed run\'s repeated epoch and a cut last line are handled', async () => {
    // stopped in epoch 2 of the second fine-tune: its epoch 1 is recorded, and a fine-tune restarts from its start
    const c = new AbortController();
    const cut = await runPipeline(tinyConfig('metrics'), {
      signal: c.signal,
      onProgress: (e) => {
        if (e.type === 'train' && e.step === 'btm-1' && e.epoch === 2) c.abort();
      },
    });
    expect(cut.status).toBe('interrupted');
    const file = join(cut.dir, 'metrics.jsonl');
    const before = readFileSync(file, 'utf8');
    writeFileSync(file, before + '{"kind":"epoch","ti'); // a line cut by a crash
    const r = await runPipeline(tinyConfig('metrics'), { resume: true });
    const text = readFileSync(file, 'utf8');
    expect(text.split('\n').filter((l) => l.includes('"step":"btm-1","epoch":1,')).length).toBe(2);
    const { records, skipped } = readMetrics(r.dir);
    expect(skipped).toBe(1);
    const epochs = records.flatMap((x) => (x.kind === 'epoch' ? [x] : []));
    // pretrain 4 + 3 fine-tunes x 3 + posttrain 2, each once; the fine-tunes train side by side
    // (btm.parallel defaults to all members), so their records interleave, each member's in epoch order
    const keys = epochs.map((x) => `${x.step}:${x.epoch}/${x.epochs}`);
    expect(keys.slice(0, 4)).toEqual([1, 2, 3, 4].map((e) => `pretrain:${e}/4`));
    expect([...keys.slice(4, 13)].sort()).toEqual([0, 1, 2].flatMap((k) => [1, 2, 3].map((e) => `btm-${k}:${e}/3`)));
    for (const k of [0, 1, 2]) expect(keys.filter((x) => x.startsWith(`btm-${k}:`))).toEqual([1, 2, 3].map((e) => `btm-${k}:${e}/3`));
    expect(keys.slice(13)).toEqual(['posttrain:1/2', 'posttrain:2/2']);
    for (const x of epochs) {
      expect(x.stage).toBe(x.step.startsWith('btm') ? 'btm' : x.step);
      for (const v of [x.lr, x.trainLoss, x.trainAccuracy, x.imagesPerSec, x.seconds]) expect(Number.isFinite(v)).toBe(true);
    }
    // cosine schedule without warm-up: the first epoch's lr is the configured one
    expect(epochs[0].lr).toBeCloseTo(0.1, 6);
    const evals = records.flatMap((x) => (x.kind === 'eval' ? [x] : []));
    expect(evals.map((x) => x.step)).toEqual(r.rows.map((row) => row.step));
    expect(evals.map((x) => x.harmonicMean)).toEqual(r.rows.map((row) => row.harmonicMean));
  });
});

describe('a run is checked before its directory is written', () => {
  const noDir = async (name: string, patch: object, error: RegExp) => {
    await expect(runPipeline(tinyConfig(name, patch))).rejects.toThrow(error);
    expect(existsSync(join(root, name)), `${name} must not be created`).toBe(false);
  };

  it('unusable data: an empty split file, a split with no images of the data, non-finite normalisation', async () => {
    const header = formatSplitList(new Int32Array(0), new Int32Array(0), { numClasses: 4, seed: 0, profile: 'exp', imbalanceFactor: 10 });
    const empty = join(root, 'empty-split.txt');
    writeFileSync(empty, header);
    await noDir('v-empty-split', { data: { dataset: 'synthetic', splitFile: empty, synthetic: { numClasses: 4, size: 16, trainPerClass: 20, testPerClass: 5 } } }, /empty-split\.txt: the long-tailed split holds no images/);
    const blank = join(root, 'blank-split.txt');
    writeFileSync(blank, '');
    await noDir('v-blank-split', { data: { dataset: 'synthetic', splitFile: blank } }, /blank-split\.txt/);
    await noDir('v-missing-split', { data: { dataset: 'synthetic', splitFile: join(root, 'nope.txt') } }, /nope\.txt/);
    await noDir('v-missing-data', { data: { dataset: 'cifar10', dir: join(root, 'no-cifar') } }, /no-cifar/);
    // list files: an image that is not an image, an empty list
    const imgRoot = join(root, 'imgs');
    mkdirSync(imgRoot, { recursive: true });
    writeFileSync(join(imgRoot, 'broken.png'), 'not a png');
    const list = (name: string, text: string) => {
      writeFileSync(join(root, name), text);
      return join(root, name);
    };
    const listData = (trainList: string, testList: string) => ({ data: { dataset: 'list', root: imgRoot, imageSize: 16, channels: 1, trainList, testList } });
    const good = list('test-list.txt', 'broken.png 0\n');
    await noDir('v-broken-image', listData(list('broken-list.txt', 'broken.png 0\nbroken.png 1\n'), good), /broken\.png/);
    await noDir('v-empty-list', listData(list('empty-list.txt', '\n'), good), /empty-list\.txt/);
  });

  it('a device that is not there', async () => {
    const bad = `cuda:${deviceCount()}`; // one past the last visible GPU (cuda:0 on a CPU-only machine)
    await noDir('v-device', { model: { arch: 'resnet8', device: bad } }, new RegExp(`model\\.device: '${bad}' requested`));
  });

  it('model.init: unreadable, not a checkpoint, or made for other data', async () => {
    await noDir('v-init-missing', { model: { arch: 'resnet8', init: join(root, 'no-such.safetensors') } }, /model\.init: .*no-such\.safetensors/);
    const notCkpt = join(root, 'not-a-checkpoint.pt');
    writeFileSync(notCkpt, Buffer.from('PK\x03\x04 this is a zip, not safetensors'));
    await noDir('v-init-pt', { model: { arch: 'resnet8', init: notCkpt } }, /model\.init: .*not-a-checkpoint\.pt/);
    const other = join(root, 'three-classes.safetensors');
    const m = new Model({ arch: 'resnet8', numClasses: 3, inChannels: 1 });
    await saveCheckpoint(other, m, { arch: 'resnet8', numClasses: 3, inChannels: 1, imageSize: 16 });
    m.dispose();
    await noDir('v-init-other', { model: { arch: 'resnet8', init: other } }, /model\.init: .*three-classes\.safetensors does not match this run: numClasses 3 \(the run needs 4\)/);
    await noDir('v-init-arch', { model: { arch: 'resnet20', init: other } }, /arch resnet8 \(the run needs resnet20\)/);
  });

  it('a run directory that cannot be created: under a regular file, under a read-only /proc', async () => {
    const file = join(root, 'a-file');
    writeFileSync(file, 'x');
    for (const runDir of [join(file, 'runs'), join(file, 'deeper', 'runs'), '/proc/self/btm-runs', '/proc/1/no/such']) {
      const t0 = performance.now();
      await expect(runPipeline({ ...tinyConfig('x'), runDir })).rejects.toThrow(/cannot create the run directory .*(is not a directory|is not writable)/);
      expect(performance.now() - t0).toBeLessThan(5000);
    }
    expect(existsSync(join(file, 'runs'))).toBe(false);
  });
});

describe('--resume', () => {
  it('refuses changed settings of started stages, naming the keys; accepts changes to stages not started yet', async () => {
    await interruptedRun('resume-diff', 2);
    const changed = tinyConfig('resume-diff', { seed: 4, pretrain: { epochs: 5, batchSize: 32, warmupEpochs: 0 } });
    await expect(runPipeline(changed, { resume: true })).rejects.toThrow(/settings differ .* in: pretrain\.epochs, seed\./);
    // posttrain has not started: its settings may change, and the saved config records the change
    const later = tinyConfig('resume-diff', { posttrain: { epochs: 1, batchSize: 16 } });
    const events: ProgressEvent[] = [];
    const r = await runPipeline(later, { resume: true, onProgress: (e) => events.push(e) });
    expect(r.status).toBe('complete');
    expect(events.some((e) => e.type === 'log' && /settings of stages not started yet changed: posttrain\.batchSize, posttrain\.epochs/.test(e.message))).toBe(true);
    expect(JSON.parse(readFileSync(join(r.dir, 'config.json'), 'utf8')).posttrain).toMatchObject({ epochs: 1, batchSize: 16 });
  });

  it('validates the saved config with the schema and refuses a directory of another format version', async () => {
    const { dir } = await interruptedRun('resume-format', 1);
    const cfgFile = join(dir, 'config.json'), stateFile = join(dir, 'state.json');
    const cfg = readFileSync(cfgFile, 'utf8'), st = readFileSync(stateFile, 'utf8');
    const saved = JSON.parse(cfg);
    writeFileSync(cfgFile, JSON.stringify({ ...saved, pretrain: { ...saved.pretrain, lr: 'fast' } }));
    await expect(runPipeline(saved, { resume: true })).rejects.toThrow(/resume-format\/config\.json\.pretrain\.lr: .*expected number/);
    writeFileSync(cfgFile, cfg);
    writeFileSync(stateFile, JSON.stringify({ ...JSON.parse(st), version: RUN_FORMAT_VERSION + 1 }));
    await expect(runPipeline(saved, { resume: true })).rejects.toThrow(/written by another btm-node version \(run format version \d+; this one reads btm-node-run version \d+\)/);
    const { format: _f, version: _v, ...old } = JSON.parse(st);
    writeFileSync(stateFile, JSON.stringify({ ...old, version: 1 })); // the layout before format versions
    await expect(runPipeline(saved, { resume: true })).rejects.toThrow(/written by another btm-node version/);
    writeFileSync(stateFile, st);
  });
});

describe('divergence is blamed on the stage where it appears', () => {
  it.each(['pretrain', 'btm', 'posttrain'] as const)('%s.lr 100 stops that stage, naming it and its lr', async (stage) => {
    const patch = { pretrain: { epochs: 2, batchSize: 32, warmupEpochs: 0 }, btm: { epochs: 2, numSubsets: 1, perClass: 8, batchSize: 8 }, posttrain: { epochs: 2, batchSize: 32 } };
    patch[stage] = { ...patch[stage], lr: 100 } as never;
    const events: ProgressEvent[] = [];
    const run = runPipeline(tinyConfig(`diverge-${stage}`, patch), { onProgress: (e) => events.push(e) });
    await expect(run).rejects.toThrow(new RegExp(`^${stage}( \\(btm-0\\))?: the (loss|weights) .* in epoch \\d.*; ${stage}\\.lr is 100: lower --${stage}\\.lr$`));
    // the stages before it finished
    const finished = JSON.parse(readFileSync(join(root, `diverge-${stage}`, 'state.json'), 'utf8')).finished;
    expect(finished).toEqual({ pretrain: [], btm: ['pretrain'], posttrain: ['pretrain', 'btm-0', 'btm-merge'] }[stage]);
  });

  it('preset more: MORE pre-training merges its factors; the checkpoint has the plain layout and loads as one', async () => {
    const events: ProgressEvent[] = [];
    const cfg = deepMerge(tinyConfig('more'), { pipeline: ['pretrain', 'posttrain'], pretrain: { more: { rank: 2, amplitude: 2 } } });
    const r = await runPipeline(cfg, { onProgress: (e) => events.push(e) });
    expect(r.status).toBe('complete');
    expect(r.rows.map((x) => x.step)).toEqual(['pretrain', 'posttrain']);
    expect(events.some((e) => e.type === 'log' && /pretrain: MORE, rank 2 on 8 layer\(s\)/.test(e.message))).toBe(true);
    const lossOf = new Map(readMetrics(r.dir).records.flatMap((x) => (x.kind === 'epoch' ? [[x.step, x.loss] as const] : [])));
    expect(lossOf.get('pretrain')).toBe('ce+more');
    expect(lossOf.get('posttrain')).toBe('las');  // tinyConfig's post-training (the btm preset's), without MORE
    const plain = new Model({ arch: 'resnet8', numClasses: 4, inChannels: 1 });
    const ck = await readCheckpoint(join(r.dir, 'pretrain.safetensors'));
    expect(ck.state.map((e) => `${e.name}:${e.shape}`)).toEqual(plain.stateDict().map((e) => `${e.name}:${e.shape}`));
  });
});
