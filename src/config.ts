/**
 * Run configuration: one zod schema for everything a pipeline run needs. A config is built as
 * defaults <- size preset <- method preset <- config file <- CLI flags, then validated here; an unknown
 * key or a bad value is an error naming the key and the allowed values.
 */
import { z } from 'zod';
import { ARCHS, isViT } from './model.js';
import { MoreSchema } from './more.js';
import { LiftModuleFields } from './lift.js';
import { INIT_FORMATS } from './checkpoint-import.js';
import { TTA_MODES } from './tta.js';

const int = (min: number, max: number) => z.number().int().min(min).max(max);
const nonneg = z.number().min(0);

export const STAGES = ['pretrain', 'fc', 'lift', 'btm', 'posttrain'] as const;
export type StageName = (typeof STAGES)[number];

export const DATASETS = ['fashion-mnist', 'mnist-idx', 'cifar10', 'cifar100', 'list', 'synthetic', 'kanji', 'mosaic', 'multilabel-list'] as const;

/** Datasets with several labels per image: generated mosaics, or list files of `path<TAB>3,17,42` lines. */
export const MULTI_LABEL_DATASETS = ['mosaic', 'multilabel-list'] as const;

export function isMultiLabelDataset(dataset: string): boolean {
  return (MULTI_LABEL_DATASETS as readonly string[]).includes(dataset);
}

/** Losses for multi-label data (BCE with logits and its variants, src/pipeline/losses.ts). */
export const MULTI_LABEL_LOSSES = ['bce', 'bce-logit-adjust', 'bce-cb'] as const;

export const DataSchema = z.strictObject({
  /** Which reader: Fashion-MNIST (Debian's dataset-fashion-mnist), any IDX pair, CIFAR binaries, list files, or generated. */
  dataset: z.enum(DATASETS).default('fashion-mnist'),
  /** Dataset directory (IDX / CIFAR); defaults to /usr/share/datasets/fashion-mnist for Fashion-MNIST. */
  dir: z.string().optional(),
  /** List files and image root for datasets 'list' and 'multilabel-list'. */
  trainList: z.string().optional(),
  testList: z.string().optional(),
  root: z.string().optional(),
  /** Side of the square images for datasets 'list' / 'multilabel-list' (decoded and resized with sharp). */
  imageSize: int(8, 1024).optional(),
  channels: z.union([z.literal(1), z.literal(3)]).optional(),
  /**
   * Classes of datasets 'list' / 'multilabel-list'; default: the largest label of the training list + 1.
   * A label >= numClasses in either list is an error naming the file and line.
   */
  numClasses: int(2, 100000).optional(),
  /** Generated data for tests and quick checks (dataset 'synthetic'). */
  synthetic: z
    .strictObject({
      numClasses: int(2, 100).default(4),
      size: int(8, 64).default(16),
      trainPerClass: int(2, 100000).default(200),
      testPerClass: int(1, 100000).default(50),
    })
    .prefault({}),
  /**
   * A many-class set drawn from real kanji stroke data (dataset 'kanji', see src/data/kanji.ts): made
   * once and kept in data.dir (default: ~/.cache/btm-node/kanji-...), read from there afterwards.
   */
  kanji: z
    .strictObject({
      numClasses: int(2, 6394).default(300),
      trainPerClass: int(1, 100000).default(300),
      testPerClass: int(1, 100000).default(30),
      size: int(8, 256).default(32),
      seed: int(0, 2 ** 32).default(0),
    })
    .prefault({}),
  /**
   * A multi-label long-tailed set (dataset 'mosaic', src/data/mosaic.ts): 2x2 mosaics of Fashion-MNIST
   * items (from data.dir, default Debian's), each cell empty with probability emptyProb or an item of a
   * class drawn with the 'exp' profile of data.imbalanceFactor; the test set is drawn balanced (IF 1).
   * The generated training set is the run's training set as a whole (no further split).
   */
  mosaic: z
    .strictObject({
      trainSize: int(2, 1_000_000).default(10000),
      testSize: int(1, 1_000_000).default(2000),
      emptyProb: z.number().min(0).max(0.95).default(0.25),
      seed: int(0, 2 ** 32).default(0),
    })
    .prefault({}),
  /** Long-tailed split of the training set: n_i = floor(n_max * (1/IF)^(i/(C-1))) ('exp') or two steps ('step'). */
  imbalanceFactor: z.number().min(1).max(10000).default(100),
  profile: z.enum(['exp', 'step']).default('exp'),
  /** n_max; defaults to the smallest class size of the full training set. */
  maxPerClass: int(1, 10_000_000).optional(),
  splitSeed: int(0, 2 ** 32).default(0),
  /**
   * A balanced validation split carved from the training set before the long-tailed split is drawn:
   * valPerClass images of every class (seeded by splitSeed), never trained on; every evaluation of a
   * run reports its metrics on them next to the test set's. 0 (default): none, the split as before.
   */
  valPerClass: int(0, 100000).default(0),
  /** Reuse an existing split list file instead of generating one. */
  splitFile: z.string().optional(),
  /** Per-channel normalisation: 'auto' computes mean/std on the training split. */
  normalize: z
    .union([z.literal('auto'), z.literal('none'), z.strictObject({ mean: z.array(z.number()), std: z.array(z.number().positive()) })])
    .default('auto'),
});

export const ModelSchema = z.strictObject({
  arch: z.enum(ARCHS).default('resnet20'),
  device: z.string().regex(/^(cpu|cuda(:\d+)?)$/, "expected 'cpu', 'cuda' or 'cuda:N'").default('cpu'),
  /** Start from this checkpoint (safetensors) instead of pre-training: the pretrain stage is skipped. */
  init: z.string().optional(),
  /**
   * How model.init is read: 'auto' (a btm-node checkpoint when it has btm-node metadata, else a plain
   * state dict with torchvision's or timm's names, told apart by its names), or one of them
   * (src/checkpoint-import.ts).
   */
  initFormat: z.enum(INIT_FORMATS).default('auto'),
  amp: z.enum(['none', 'bf16', 'fp16']).default('none'),
  channelsLast: z.boolean().default(false),
});

const ScheduleFields = {
  epochs: int(0, 100000),
  lr: z.number().min(0).max(100),
  batchSize: int(1, 1 << 16).default(128),
  momentum: z.number().min(0).max(1).default(0.9),
  weightDecay: nonneg.max(1).default(5e-4),
  nesterov: z.boolean().default(false),
  /** Cosine to minLr over all steps, or step decay by gamma at milestones (epochs). */
  schedule: z.enum(['cosine', 'step', 'constant']).default('cosine'),
  minLr: nonneg.default(0),
  warmupEpochs: nonneg.max(1000).default(0),
  milestones: z.array(int(1, 100000)).default([]),
  gamma: z.number().min(0).max(1).default(0.1),
};

const AugmentFields = {
  cropPadding: int(0, 64).default(0),
  hflip: z.boolean().default(false),
  mixupAlpha: nonneg.max(100).default(0),
};

/** Losses every stage can use. */
export const LossSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('ce') }),
  /** Balanced softmax (tau = 1) / logit adjustment: logits + tau * log prior in the loss. */
  z.strictObject({ type: z.literal('logit-adjust'), tau: nonneg.max(10).default(1) }),
  /** MiSLAS label-aware smoothing: eps_y from eps_head (most frequent) to eps_tail (rarest). */
  z.strictObject({
    type: z.literal('las'),
    epsHead: z.number().min(0).max(1).default(0.3),
    epsTail: z.number().min(0).max(1).default(0),
  }),
  /** GML (Du & Wu 2023): mean over classes of -log(mean prob of the true class), with count-weighted probabilities. */
  z.strictObject({ type: z.literal('gml'), p: z.number().min(0.1).max(10).default(1) }),
  /** Binary cross-entropy with logits (multi-label sets; on single-label data: one-hot targets). */
  z.strictObject({ type: z.literal('bce') }),
  /** BCE with logits + tau * log(pi_c / (1 - pi_c)) in the loss, pi_c the share of images containing class c. */
  z.strictObject({ type: z.literal('bce-logit-adjust'), tau: nonneg.max(10).default(1) }),
  /** Class-balanced BCE (Cui et al. 2019): class c's terms weighted by (1 - beta) / (1 - beta^n_c), normalised to mean 1. */
  z.strictObject({ type: z.literal('bce-cb'), beta: z.number().min(0).max(0.99999).default(0.999) }),
]);

export const PretrainSchema = z.strictObject({
  ...ScheduleFields,
  ...AugmentFields,
  loss: LossSchema.default({ type: 'ce' }),
  /** MORE: low-rank rebalancing of the trained layers (src/more.ts). */
  more: MoreSchema.optional(),
});

export const FcSchema = z.strictObject({
  ...ScheduleFields,
  loss: LossSchema.default({ type: 'ce' }),
  more: MoreSchema.optional(),
});

export const MERGE_STRATEGIES = ['uniform', 'adaptive-hmean', 'adaptive-gmean', 'greedy-hmean', 'greedy-gmean'] as const;

export const BtmSchema = z.strictObject({
  ...ScheduleFields,
  ...AugmentFields,
  loss: LossSchema.default({ type: 'ce' }),
  /** N_D balanced subsets, N_C images per class each. */
  numSubsets: int(1, 1000).default(10),
  perClass: int(1, 100000).default(10),
  /**
   * What the fine-tunes train (the paper's table 8); 'peft': the lift.* modules and head only (the
   * lift-btm preset; the modules are attached first when no lift stage ran); 'last-block': the last
   * residual stage and the classifier, the BatchNorm statistics before it frozen (the official
   * Places-LT recipe; ResNets only).
   */
  trainable: z.enum(['all', 'backbone', 'classifier', 'peft', 'last-block']).default('all'),
  merge: z.enum(MERGE_STRATEGIES).default('uniform'),
  /** Fine-tunes trained together in one native call (default: all; 1 = one after another). */
  parallel: int(1, 1000).optional(),
  /**
   * How fine-tunes trained together run: 'auto' (one stacked network with grouped convolutions on
   * CUDA, side by side on the CPU cores otherwise), true (stacked: an error names what prevents it),
   * false (never stacked). See MemberTrainOptions.stacked.
   */
  stacked: z.union([z.boolean(), z.literal('auto')]).default('auto'),
  /** Evaluate each fine-tuned model on the test set (a row per fine-tune, like table 5). */
  evalEach: z.boolean().default(true),
});

/**
 * LIFT's lightweight fine-tune (src/lift.ts): the trunk frozen, only the chosen PEFT modules and the
 * head train, on the long-tailed set with the logit-adjusted loss.
 */
export const LiftSchema = z.strictObject({
  ...ScheduleFields,
  ...AugmentFields,
  loss: LossSchema.default({ type: 'logit-adjust', tau: 1 }),
  ...LiftModuleFields,
});

export const PosttrainSchema = z.strictObject({
  ...ScheduleFields,
  /** Class-aware sampler: perClass images per class per draw (MiSLAS uses 4). */
  perClass: int(1, 1000).default(4),
  /** Learnable per-class logit scale, folded into fc when the stage ends. */
  lws: z.boolean().default(false),
  /** BatchNorm statistics re-estimated on the class-balanced batches while the classifier trains. */
  shiftBn: z.boolean().default(false),
  mixupAlpha: nonneg.max(100).default(0),
  loss: LossSchema.default({ type: 'ce' }),
  more: MoreSchema.optional(),
});

export const EvalSchema = z.strictObject({
  batchSize: int(1, 1 << 16).default(512),
  manyThreshold: int(0, 1_000_000).default(100),
  fewThreshold: int(0, 1_000_000).default(20),
  /**
   * Test-time ensembling (src/tta.ts): 'five-crop' upscales each test image to ttaResize, takes the four
   * corner crops and the centre crop of the model's size and averages their logits (LIFT). Applied by
   * the run's final evaluation (an extra row after the last stage) and by `btm eval`.
   */
  tta: z.enum(TTA_MODES).default('none'),
  /** The side images are upscaled to before the five crops (default: LIFT's 224 -> 248, proportionally: 28 -> 31). */
  ttaResize: int(1, 1 << 14).optional(),
});

export const ConfigSchema = z
  .strictObject({
    /** Run name: the run directory is <runDir>/<name>. */
    name: z.string().regex(/^[\w.-]+$/, 'letters, digits, . _ - only'),
    runDir: z.string().default('runs'),
    pipeline: z.array(z.enum(STAGES)).min(1),
    seed: int(0, 2 ** 32).default(0),
    /** libtorch intra-op threads (default: the machine's cores). */
    threads: int(1, 1024).optional(),
    data: DataSchema.prefault({}),
    model: ModelSchema.prefault({}),
    pretrain: PretrainSchema,
    fc: FcSchema,
    lift: LiftSchema,
    btm: BtmSchema,
    posttrain: PosttrainSchema,
    eval: EvalSchema.prefault({}),
  })
  .superRefine((c, ctx) => {
    if (c.eval.fewThreshold > c.eval.manyThreshold) {
      ctx.addIssue({ code: 'custom', path: ['eval', 'fewThreshold'], message: `must be <= eval.manyThreshold (${c.eval.manyThreshold})` });
    }
    for (const [i, s] of c.pipeline.entries()) {
      if (c.pipeline.indexOf(s) !== i) ctx.addIssue({ code: 'custom', path: ['pipeline', i], message: `stage '${s}' appears twice` });
    }
    const order = c.pipeline.map((s) => STAGES.indexOf(s));
    if (order.some((v, i) => i > 0 && v < order[i - 1])) {
      ctx.addIssue({ code: 'custom', path: ['pipeline'], message: `stages must run in the order ${STAGES.join(' -> ')}` });
    }
    const listed = c.data.dataset === 'list' || c.data.dataset === 'multilabel-list';
    if (listed && (!c.data.trainList || !c.data.testList || !c.data.root || !c.data.imageSize)) {
      ctx.addIssue({ code: 'custom', path: ['data'], message: `dataset '${c.data.dataset}' needs trainList, testList, root and imageSize` });
    }
    if (!listed && c.data.numClasses !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['data', 'numClasses'], message: `only datasets 'list' and 'multilabel-list' take it (dataset '${c.data.dataset}' has its own class count)` });
    }
    if (isMultiLabelDataset(c.data.dataset)) {
      for (const stage of c.pipeline) {
        const type = c[stage].loss.type;
        if (!(MULTI_LABEL_LOSSES as readonly string[]).includes(type)) {
          ctx.addIssue({ code: 'custom', path: [stage, 'loss', 'type'], message: `dataset '${c.data.dataset}' is multi-label: the loss must be one of ${MULTI_LABEL_LOSSES.join(', ')}, got '${type}' (the ml-* presets set them)` });
        }
      }
      if (c.data.valPerClass > 0) {
        ctx.addIssue({ code: 'custom', path: ['data', 'valPerClass'], message: `dataset '${c.data.dataset}' is multi-label: no validation split (got ${c.data.valPerClass}, use 0)` });
      }
    }
    if (c.btm.trainable === 'last-block' && isViT(c.model.arch)) {
      ctx.addIssue({ code: 'custom', path: ['btm', 'trainable'], message: `'last-block' trains a ResNet's last residual stage; model.arch '${c.model.arch}' has none (use all, backbone, classifier or peft)` });
    }
    for (const stage of ['pretrain', 'lift', 'btm', 'posttrain'] as const) {
      if (c[stage].loss.type === 'gml' && c[stage].mixupAlpha > 0) {
        ctx.addIssue({ code: 'custom', path: [stage, 'loss'], message: 'the GML loss does not take mixup: set mixupAlpha to 0' });
      }
    }
  });

export type Config = z.output<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
export type LossConfig = z.output<typeof LossSchema>;
export type ScheduleConfig = Pick<Config['pretrain'], keyof typeof ScheduleFields>;

/**
 * Formats zod issues as one line per problem: `config.<path>: <message>`; given the input, a bad
 * number, string or boolean is quoted after the message (`, got -3`).
 */
export function formatConfigIssues(error: z.ZodError, source = 'config', input?: unknown): string {
  return error.issues
    .map((i) => {
      const path = i.path.length ? `${source}.${i.path.join('.')}` : source;
      let v: unknown = input;
      for (const k of i.path) v = typeof v === 'object' && v !== null ? (v as Record<PropertyKey, unknown>)[k] : undefined;
      const got = input !== undefined && i.path.length && ['number', 'string', 'boolean'].includes(typeof v) ? `, got ${JSON.stringify(v)}` : '';
      return `${path}: ${i.message}${got}`;
    })
    .join('\n');
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Validates a config object; throws ConfigError listing every problem. */
export function parseConfig(input: unknown, source = 'config'): Config {
  const r = ConfigSchema.safeParse(input);
  if (!r.success) throw new ConfigError(`invalid configuration:\n${formatConfigIssues(r.error, source, input)}`);
  return r.data;
}

/** The dotted keys whose values differ between two configs (leaves compared; arrays and losses as wholes). */
export function configDiff(a: unknown, b: unknown, prefix = ''): string[] {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const whole = prefix.endsWith('.loss') || prefix === 'loss' || prefix.endsWith('.normalize');
  if (!whole && isObj(a) && isObj(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((k) => configDiff(a[k], b[k], prefix ? `${prefix}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix || '(whole config)'];
}
