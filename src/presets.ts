/**
 * Named presets. A method preset picks the pipeline and the post-training recipe; a size preset picks
 * the schedule (a CPU-sized one that runs Fashion-MNIST-LT in about 6.5 minutes on 2 idle cores, and the
 * paper-sized one of the CIFAR-LT literature). The final config is
 *   size defaults <- method preset <- config file <- flags,
 * validated by ConfigSchema.
 */
import type { ConfigInput, StageName } from './config.js';

export const METHODS = ['ce', 'crt', 'mislas', 'btm', 'btm-fc', 'more', 'more-btm', 'lift', 'lift-btm', 'ml-ce', 'ml-crt', 'ml-btm', 'ml-more', 'ml-more-btm'] as const;
export type Method = (typeof METHODS)[number];
export const SIZES = ['cpu', 'paper'] as const;
export type Size = (typeof SIZES)[number];

type DeepPartial<T> = T extends readonly unknown[] ? T : T extends object ? { [K in keyof T]?: DeepPartial<T[K]> } : T;
export type ConfigPatch = DeepPartial<ConfigInput>;

/**
 * LIFT's recipe (shijxcs/LIFT): 10 epochs, SGD lr 0.01, momentum 0.9, wd 5e-4, batch 128, cosine
 * schedule, logit-adjusted CE (tau 1), cosine head (scale 25) from class means; the same at both sizes.
 */
const LIFT_STAGE: ConfigPatch['lift'] = { epochs: 10, lr: 0.01, batchSize: 128, weightDecay: 5e-4, schedule: 'cosine' };

/** Full stage settings for each size (every stage is defined so any pipeline can run). */
const SIZE_DEFAULTS: Record<Size, ConfigPatch> = {
  cpu: {
    model: { arch: 'resnet20' },
    pretrain: { epochs: 25, lr: 0.1, batchSize: 128, warmupEpochs: 1, schedule: 'cosine', weightDecay: 5e-4, cropPadding: 2, hflip: true, mixupAlpha: 0.2 },
    fc: { epochs: 5, lr: 0.05, batchSize: 128 },
    lift: LIFT_STAGE,
    btm: { epochs: 30, lr: 0.01, batchSize: 32, cropPadding: 2, hflip: true, mixupAlpha: 0.2, numSubsets: 10, perClass: 10 },
    posttrain: { epochs: 10, lr: 0.05, batchSize: 128, perClass: 4 },
  },
  // MiSLAS CIFAR-LT stage 1 (ResNet-32, 200 epochs, lr 0.1, wd 2e-4, mixup 1.0, 5 warm-up epochs, x0.1 at
  // 160 and 180) and stage 2 (10 epochs); BTM fine-tunes 30 epochs.
  paper: {
    model: { arch: 'resnet32' },
    pretrain: {
      epochs: 200, lr: 0.1, batchSize: 128, warmupEpochs: 5, schedule: 'step', milestones: [160, 180], gamma: 0.1,
      weightDecay: 2e-4, cropPadding: 4, hflip: true, mixupAlpha: 1.0,
    },
    fc: { epochs: 10, lr: 0.1, batchSize: 128 },
    lift: LIFT_STAGE,
    btm: { epochs: 30, lr: 0.01, batchSize: 32, cropPadding: 4, hflip: true, mixupAlpha: 0.2, numSubsets: 10, perClass: 10 },
    posttrain: { epochs: 10, lr: 0.05, batchSize: 128, perClass: 4 },
  },
};

const LAS_POST: ConfigPatch['posttrain'] = { loss: { type: 'las', epsHead: 0.3, epsTail: 0.0 }, lws: true, shiftBn: true };
const CRT_POST: ConfigPatch['posttrain'] = { loss: { type: 'ce' }, lws: false, shiftBn: false };

/** MORE pre-training (src/more.ts): rank 8 on every layer, the sinusoidal schedule, l2 discrepancy. */
const MORE_PRE: ConfigPatch['pretrain'] = { more: { rank: 8, amplitude: 1, schedule: 'sine', discrepancy: 'l2' } };

/**
 * Multi-label (dataset 'mosaic'): BCE in every stage; post-training re-trains the classifier with BCE on
 * class-aware batches (drawn per class from the images that contain it), as cRT does for one label.
 */
const ML: ConfigPatch = {
  data: { dataset: 'mosaic' },
  pretrain: { loss: { type: 'bce' } },
  fc: { loss: { type: 'bce' } },
  btm: { loss: { type: 'bce' } },
  posttrain: { loss: { type: 'bce' }, lws: false, shiftBn: false },
};

const METHOD_PRESETS: Record<Method, { pipeline: StageName[]; patch: ConfigPatch }> = {
  ce: { pipeline: ['pretrain'], patch: {} },
  crt: { pipeline: ['pretrain', 'posttrain'], patch: { posttrain: CRT_POST } },
  mislas: { pipeline: ['pretrain', 'posttrain'], patch: { posttrain: LAS_POST } },
  btm: { pipeline: ['pretrain', 'btm', 'posttrain'], patch: { posttrain: LAS_POST } },
  'btm-fc': { pipeline: ['pretrain', 'fc', 'btm', 'posttrain'], patch: { posttrain: LAS_POST } },
  more: { pipeline: ['pretrain', 'posttrain'], patch: { pretrain: MORE_PRE, posttrain: LAS_POST } },
  'more-btm': { pipeline: ['pretrain', 'btm', 'posttrain'], patch: { pretrain: MORE_PRE, posttrain: LAS_POST } },
  // LIFT: a frozen trunk (from --model.init; pre-trained here without it) + lift.modules + cosine head + LA loss
  lift: { pipeline: ['pretrain', 'lift'], patch: {} },
  // BTM over the lightweight parameters: N_D fine-tunes of the modules and head on balanced subsets, merged
  'lift-btm': { pipeline: ['pretrain', 'btm'], patch: { btm: { trainable: 'peft' } } },
  'ml-ce': { pipeline: ['pretrain'], patch: ML },
  'ml-crt': { pipeline: ['pretrain', 'posttrain'], patch: ML },
  'ml-btm': { pipeline: ['pretrain', 'btm', 'posttrain'], patch: ML },
  'ml-more': { pipeline: ['pretrain', 'posttrain'], patch: deepMerge(ML, { pretrain: MORE_PRE }) },
  'ml-more-btm': { pipeline: ['pretrain', 'btm', 'posttrain'], patch: deepMerge(ML, { pretrain: MORE_PRE }) },
};

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Deep merge of plain objects; arrays and scalars in `over` replace those in `base`. */
export function deepMerge<T>(base: T, over: unknown): T {
  if (!isPlainObject(base) || !isPlainObject(over)) return (over === undefined ? base : over) as T;
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === undefined) continue;
    // a loss is replaced whole: its fields depend on its type
    out[k] = k === 'loss' ? v : deepMerge(out[k], v);
  }
  return out as T;
}

/** The unvalidated config for a method and size, before file and flag overrides. */
export function presetConfig(method: Method, size: Size = 'cpu'): ConfigInput {
  const m = METHOD_PRESETS[method];
  const merged = deepMerge(deepMerge({ name: `${method}-${size}` } as ConfigPatch, SIZE_DEFAULTS[size]), m.patch);
  return { ...merged, pipeline: [...m.pipeline] } as ConfigInput;
}
