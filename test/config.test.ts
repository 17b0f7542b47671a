import { describe, expect, it } from 'vitest';
import { ConfigError, configDiff, parseConfig } from '../src/config.js';
import { deepMerge, METHODS, presetConfig, SIZES } from '../src/presets.js';
import { learningRate } from '../src/schedule.js';
import { labelAwareSmoothing, lossOptions } from '../src/pipeline/losses.js';

describe('presets', () => {
  it.each(METHODS.flatMap((m) => SIZES.map((s) => [m, s] as const)))('%s / %s is a valid config', (m, s) => {
    const c = parseConfig(presetConfig(m, s));
    expect(c.pipeline[0]).toBe('pretrain');
  });
  it('pipelines follow the method', () => {
    expect(parseConfig(presetConfig('btm')).pipeline).toEqual(['pretrain', 'btm', 'posttrain']);
    expect(parseConfig(presetConfig('btm-fc')).pipeline).toEqual(['pretrain', 'fc', 'btm', 'posttrain']);
    expect(parseConfig(presetConfig('crt')).posttrain.loss).toEqual({ type: 'ce' });
    expect(parseConfig(presetConfig('mislas')).posttrain).toMatchObject({ lws: true, shiftBn: true, loss: { type: 'las' } });
    const more = parseConfig(presetConfig('more'));
    expect(more.pipeline).toEqual(['pretrain', 'posttrain']);
    expect(more.pretrain.more).toEqual({ rank: 8, amplitude: 1, schedule: 'sine', discrepancy: 'l2', generalGrad: true });
    expect(more.posttrain.more).toBeUndefined();
    const moreBtm = parseConfig(presetConfig('more-btm'));
    expect(moreBtm.pipeline).toEqual(['pretrain', 'btm', 'posttrain']);
    expect(moreBtm.pretrain.more?.rank).toBe(8);
    expect(parseConfig(presetConfig('btm')).pretrain.more).toBeUndefined();
  });
  it('deepMerge replaces arrays and losses whole, merges objects', () => {
    expect(deepMerge({ a: { b: 1, c: 2 }, l: [1, 2] }, { a: { c: 3 }, l: [9] })).toEqual({ a: { b: 1, c: 3 }, l: [9] });
    expect(deepMerge({ loss: { type: 'las', epsHead: 0.3 } }, { loss: { type: 'ce' } })).toEqual({ loss: { type: 'ce' } });
  });
});

describe('config errors name the key and the allowed values', () => {
  const base = presetConfig('btm');
  const errorOf = (patch: unknown) => {
    try {
      parseConfig(deepMerge(base, patch));
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as Error).message;
    }
    throw new Error('expected a ConfigError');
  };
  it('unknown keys', () => {
    expect(errorOf({ pretrain: { epoch: 3 } })).toMatch(/config\.pretrain: Unrecognized key: "epoch"/);
    expect(errorOf({ colour: 'red' })).toMatch(/config: Unrecognized key: "colour"/);
  });
  it('out-of-range and wrong-type values', () => {
    expect(errorOf({ pretrain: { epochs: -1 } })).toMatch(/config\.pretrain\.epochs: .*>=0/);
    expect(errorOf({ btm: { momentum: 2 } })).toMatch(/config\.btm\.momentum: .*<=1/);
    expect(errorOf({ model: { arch: 'vgg16' } })).toMatch(/config\.model\.arch: .*resnet32/);
    expect(errorOf({ model: { device: 'gpu' } })).toMatch(/config\.model\.device: expected 'cpu', 'cuda' or 'cuda:N'/);
    expect(errorOf({ btm: { merge: 'best' } })).toMatch(/config\.btm\.merge: .*greedy-hmean/);
    expect(errorOf({ data: { imbalanceFactor: 0.5 } })).toMatch(/config\.data\.imbalanceFactor: .*>=1/);
    expect(errorOf({ btm: { numSubsets: 2.5 } })).toMatch(/config\.btm\.numSubsets/);
  });
  it('MORE options', () => {
    expect(errorOf({ pretrain: { more: { rank: 0 } } })).toMatch(/config\.pretrain\.more\.rank: .*>=1/);
    expect(errorOf({ pretrain: { more: { amplitude: -1 } } })).toMatch(/config\.pretrain\.more\.amplitude: .*>=0/);
    expect(errorOf({ pretrain: { more: { discrepancy: 'l1' } } })).toMatch(/config\.pretrain\.more\.discrepancy: .*'l2'\|'kl'|config\.pretrain\.more\.discrepancy: .*"l2"/);
    expect(errorOf({ posttrain: { more: { rank: 2, sched: 'sine' } } })).toMatch(/config\.posttrain\.more: Unrecognized key: "sched"/);
    expect(errorOf({ btm: { more: { rank: 2 } } })).toMatch(/config\.btm: Unrecognized key: "more"/);
    expect(parseConfig(deepMerge(base, { fc: { more: { rank: 2, layers: ['fc'] } } })).fc.more).toMatchObject({ rank: 2, layers: ['fc'], amplitude: 1 });
  });
  it('cross-field checks', () => {
    expect(errorOf({ pipeline: ['btm', 'pretrain'] })).toMatch(/config\.pipeline: stages must run in the order/);
    expect(errorOf({ eval: { fewThreshold: 200 } })).toMatch(/config\.eval\.fewThreshold: must be <= eval\.manyThreshold/);
    expect(errorOf({ posttrain: { loss: { type: 'gml' }, mixupAlpha: 0.2 } })).toMatch(/config\.posttrain\.loss: the GML loss does not take mixup/);
    expect(errorOf({ data: { dataset: 'list' } })).toMatch(/config\.data: dataset 'list' needs trainList/);
    expect(errorOf({ posttrain: { loss: { type: 'focal' } } })).toMatch(/config\.posttrain\.loss/);
    // btm.trainable 'last-block' (a ResNet's last residual stage + fc): no such stage in a ViT; a bad value is named
    expect(parseConfig(deepMerge(base, { btm: { trainable: 'last-block' } })).btm.trainable).toBe('last-block');
    expect(errorOf({ model: { arch: 'vit_mini_p4' }, btm: { trainable: 'last-block' } })).toMatch(/config\.btm\.trainable: 'last-block' trains a ResNet's last residual stage; model\.arch 'vit_mini_p4' has none/);
    expect(errorOf({ btm: { trainable: 'last-stage' } })).toMatch(/config\.btm\.trainable: .*"last-block".*got "last-stage"/);
  });
  it('lists every problem at once', () => {
    const msg = errorOf({ pretrain: { epochs: -1 }, btm: { momentum: 2 } });
    expect(msg.split('\n').length).toBeGreaterThanOrEqual(3);
  });
});

describe('learning-rate schedules', () => {
  const base = { epochs: 10, lr: 0.1, batchSize: 1, momentum: 0.9, weightDecay: 0, nesterov: false, minLr: 0, warmupEpochs: 0, milestones: [], gamma: 0.1 };
  it('cosine goes from lr to minLr', () => {
    const c = { ...base, schedule: 'cosine' as const };
    expect(learningRate(c, 0, 10)).toBeCloseTo(0.1, 10);
    expect(learningRate(c, 50, 10)).toBeCloseTo(0.05, 10);
    expect(learningRate(c, 99, 10)).toBeLessThan(0.001);
  });
  it('linear warm-up then step decay at milestones', () => {
    const c = { ...base, schedule: 'step' as const, warmupEpochs: 2, milestones: [5, 8] };
    expect(learningRate(c, 0, 10)).toBeCloseTo(0.1 / 20, 10);
    expect(learningRate(c, 19, 10)).toBeCloseTo(0.1, 10);
    expect(learningRate(c, 49, 10)).toBeCloseTo(0.1, 10);
    expect(learningRate(c, 50, 10)).toBeCloseTo(0.01, 10);
    expect(learningRate(c, 80, 10)).toBeCloseTo(0.001, 10);
  });
});

describe('losses from counts', () => {
  it('label-aware smoothing: eps_head for the largest class, eps_tail for the smallest, sine in between', () => {
    const eps = labelAwareSmoothing([1000, 505, 10], 0.4, 0.1);
    expect(eps[0]).toBeCloseTo(0.4, 10);
    expect(eps[2]).toBeCloseTo(0.1, 10);
    expect(eps[1]).toBeCloseTo(0.1 + 0.3 * Math.sin(Math.PI / 4), 10);
  });
  it('logit adjustment is tau * log prior; GML uses log counts', () => {
    const o = lossOptions({ type: 'logit-adjust', tau: 2 }, [75, 25]);
    expect(o.logitOffsets![0]).toBeCloseTo(2 * Math.log(0.75), 10);
    expect(lossOptions({ type: 'gml', p: 1 }, [10, 5])).toEqual({ loss: 'gml', logitOffsets: [Math.log(10), Math.log(5)], gmlPower: 1 });
  });
});

describe('configDiff (what --resume compares)', () => {
  it('lists the dotted keys that differ; arrays, losses and normalisations compare whole', () => {
    const a = parseConfig(presetConfig('btm'));
    expect(configDiff(a, parseConfig(presetConfig('btm')))).toEqual([]);
    const b = parseConfig(deepMerge(presetConfig('btm'), {
      seed: 1, pretrain: { lr: 0.2, milestones: [3] }, posttrain: { loss: { type: 'las', epsHead: 0.2 } }, data: { normalize: { mean: [0.5], std: [0.2] } },
    }));
    expect(configDiff(a, b)).toEqual(['data.normalize', 'posttrain.loss', 'pretrain.lr', 'pretrain.milestones', 'seed']);
    expect(configDiff({ x: { y: 1 } }, { x: { y: 1, z: 2 } })).toEqual(['x.z']);
  });
});
