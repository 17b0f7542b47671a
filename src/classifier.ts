/**
 * A trained model ready to use: weights plus how to feed it (normalisation, image size, classes).
 *
 * Serving: `predict` may be called concurrently (e.g. once per HTTP request). Calls queue in arrival
 * order; while one native forward runs, the calls that arrive are collected, and when it ends they
 * run together as one batch of up to `maxBatch` images (a call larger than that runs alone). Nothing
 * waits for a batch to fill: an idle classifier starts a call at once. Each caller gets exactly its
 * own predictions (and logits if asked), the same as if the calls had run one at a time, and a call
 * that fails (a bad argument or shape) rejects only that caller.
 */
import { arg, describe, is, type Check } from './args.js';
import { checkModelMeta, type ModelMeta } from './checkpoint.js';
import { importPlainState, INIT_FORMATS, plainShape, readInitFile, type InitFile, type InitFormat } from './checkpoint-import.js';
import type { ImageSet } from './data/image-set.js';
import { Dataset } from './dataset.js';
import type { Device } from './device.js';
import { summarize, type Summary } from './metrics.js';
import { sigmoidScores, summarizeMultiLabel, topHitRate, type MultiLabelSummary } from './metrics-multilabel.js';
import { ARCHS, Model, type Arch } from './model.js';
import { preparePeftModel } from './lift.js';
import { fiveCropEnsemble, TTA_MODES, type TtaMode } from './tta.js';

/**
 * Default `maxBatch`: the images one merged forward may hold. Measured on the CIFAR resnet20, 2 CPU
 * cores, libtorch 1.13 (`npm run bench -- --only serve`, two runs): an eval forward costs 15-26 ms
 * for 1 image, 1.2-1.5 ms per image for 2, a flat 2.2-2.8 ms per image from 8 to 64, and 1.2-1.5 for 128.
 * Between 8 and 64 a larger batch gains no throughput but lengthens the forward a newly arrived call
 * waits behind (73-89 ms at 32, 143-170 ms at 64), so 32.
 */
export const DEFAULT_MAX_BATCH = 32;

/**
 * A forward of one image is 6-17x slower than one of two on libtorch's CPU convolutions (measured
 * above), so a lone image is evaluated as a pair (itself twice) and the second result dropped.
 * Per-image results do not depend on the batch in eval mode.
 */
const PAD_SINGLE_IMAGE = true;

/** Native evaluate batch size for one call's images (a large call is evaluated in chunks of this). */
const DEFAULT_EVAL_BATCH = 256;

export interface PredictOptions {
  /** Also return the logits, n x numClasses row-major. */
  logits?: boolean;
  /** Images per native forward for a large call (default 256); the output does not depend on it. */
  batchSize?: number;
  /**
   * What raw bytes hold: [channels, height, width] or [n, channels, height, width]. Checked against
   * the model, so bytes of another image size are refused instead of being read as more images.
   * Not allowed with an ImageSet (it carries its own shape).
   */
  shape?: readonly number[];
}

export interface Prediction {
  preds: Int32Array;
  logits?: Float32Array;
}

export interface ClassifierOptions {
  /** Images one merged forward may hold (default {@link DEFAULT_MAX_BATCH}); 1 = one call at a time. */
  maxBatch?: number;
  /** Where the model came from (its checkpoint file), for error messages. */
  source?: string;
}

/** The shape part of an ImageSet that compatibility is checked on. */
export type ShapeOf = Pick<ImageSet, 'channels' | 'height' | 'width'> & { numClasses?: number; source?: string };

const shapeText = (h: number, w: number, c: number) => `${h}x${w}x${c}`;

/**
 * Throws an Error naming both sides when images of `set`'s shape (and, when `set.numClasses` is
 * given and `classes` is not false, its class count) cannot be used with the model `meta` describes:
 * `ckpt.safetensors: the model expects 16x16x1 images (HxWxC) and 4 classes, but data.idx has
 * 32x32x3 images and 6 classes`. For `evaluate` and for CLI commands that load a checkpoint and data.
 */
export function checkCompatible(meta: ModelMeta, set: ShapeOf, opts: { classes?: boolean; checkpoint?: string } = {}): void {
  arg('checkCompatible', 'meta', meta, checkModelMeta);
  arg('checkCompatible', 'set', set, is.object({
    channels: is.integer({ min: 1 }), height: is.integer({ min: 1 }), width: is.integer({ min: 1 }),
    numClasses: is.optional(is.integer({ min: 1 })), source: is.optional(is.string()),
  }, { extra: true }));
  const classes = opts.classes !== false && set.numClasses !== undefined;
  const imagesDiffer = set.channels !== meta.inChannels || set.height !== meta.imageSize || set.width !== meta.imageSize;
  const classesDiffer = classes && set.numClasses !== meta.numClasses;
  if (!imagesDiffer && !classesDiffer) return;
  const what = [
    set.height !== meta.imageSize || set.width !== meta.imageSize ? 'image size' : '',
    set.channels !== meta.inChannels ? 'channels' : '',
    classesDiffer ? 'classes' : '',
  ].filter(Boolean).join(', ');
  const model = `expects ${shapeText(meta.imageSize, meta.imageSize, meta.inChannels)} images (HxWxC)` + (classes ? ` and ${meta.numClasses} classes` : '');
  const data = `${shapeText(set.height, set.width, set.channels)} images` + (classes ? ` and ${set.numClasses} classes` : '');
  throw new Error(`${opts.checkpoint ?? 'the model'}: the model ${model}, but ${set.source ?? 'the data'} has ${data} (${what} differ)`);
}

const IMAGES = 'a Uint8Array (uint8 NCHW pixels) or an ImageSet';
const IMAGE_SET_FIELDS = {
  images: is.instance(Uint8Array),
  n: is.integer({ min: 0 }),
  channels: is.integer({ min: 1 }),
  height: is.integer({ min: 1 }),
  width: is.integer({ min: 1 }),
};
const IMAGE_SET = is.object(IMAGE_SET_FIELDS, { extra: true }) as unknown as Check<ImageSet>;
const LABELLED_SET = is.object({ ...IMAGE_SET_FIELDS, labels: is.instance(Int32Array), numClasses: is.integer({ min: 1 }) }, { extra: true });

const PREDICT_OPTIONS = is.options({
  logits: is.optional(is.boolean()),
  batchSize: is.optional(is.integer({ min: 1 })),
  shape: is.optional(is.array(is.integer({ min: 1 }))),
});

interface Request {
  bytes: Uint8Array;
  n: number;
  logits: boolean;
  batchSize?: number;
  resolve: (p: Prediction) => void;
  reject: (e: unknown) => void;
}

export class Classifier implements Disposable {
  /** Images one merged forward may hold. */
  readonly maxBatch: number;
  readonly source?: string;
  private readonly queue: Request[] = [];
  private running = false;
  private closed = false;

  constructor(
    readonly model: Model,
    readonly meta: ModelMeta,
    opts: ClassifierOptions = {},
  ) {
    arg('Classifier', 'model', model, is.instance(Model));
    arg('Classifier', 'meta', meta, checkModelMeta);
    const o = arg('Classifier', 'options', opts, is.options({ maxBatch: is.optional(is.integer({ min: 1 })), source: is.optional(is.string()) }));
    this.maxBatch = o.maxBatch ?? DEFAULT_MAX_BATCH;
    this.source = o.source;
  }

  /** Calls waiting for the model (not counting the batch that is running). */
  get queued(): number {
    return this.queue.length;
  }

  /**
   * Predicted class per image. `images` is an ImageSet, or uint8 NCHW bytes of images with the
   * model's channels and image size (n * inChannels * imageSize^2 bytes; say `shape` to have it checked).
   * Safe to call concurrently: see the file comment. Rejects with a TypeError for a wrong argument
   * type and an Error naming both shapes for images the model cannot take.
   */
  async predict(images: Uint8Array | ImageSet, opts: PredictOptions = {}): Promise<Prediction> {
    const fn = 'Classifier.predict';
    const o = arg(fn, 'options', opts, PREDICT_OPTIONS);
    if (this.closed) throw new Error(`${fn}: the classifier is disposed`);
    const { bytes, n } = this.inputOf(fn, images, o.shape);
    if (n === 0) return { preds: new Int32Array(0), ...(o.logits ? { logits: new Float32Array(0) } : {}) };
    return new Promise<Prediction>((resolve, reject) => {
      this.queue.push({ bytes, n, logits: Boolean(o.logits), batchSize: o.batchSize, resolve, reject });
      this.pump();
    });
  }

  /** The bytes and image count of a predict argument, after checking it against the model. */
  private inputOf(fn: string, images: unknown, shape: readonly number[] | undefined): { bytes: Uint8Array; n: number } {
    const { inChannels: c, imageSize: s } = this.meta;
    const per = c * s * s;
    const checkpoint = this.source ?? 'the model';
    if (images instanceof Uint8Array) {
      if (shape !== undefined) {
        if (shape.length !== 3 && shape.length !== 4) {
          throw new RangeError(`${fn}: options.shape must be [channels, height, width] or [n, channels, height, width], got [${shape}]`);
        }
        const [ch, h, w] = shape.slice(-3);
        checkCompatible(this.meta, { channels: ch, height: h, width: w, source: `images of shape [${shape}]` }, { checkpoint });
        const n = shape.length === 4 ? shape[0] : images.length / per;
        if (images.length !== n * per) {
          throw new RangeError(`${fn}: images has ${images.length} bytes, but options.shape [${shape}] needs ` +
            (shape.length === 4 ? `${n * per}` : `a multiple of ${per}`));
        }
        return { bytes: images, n };
      }
      if (images.length % per !== 0) {
        throw new RangeError(`${fn}: images has ${images.length} bytes, not a whole number of ${shapeText(s, s, c)} images ` +
          `(${per} bytes each) as ${checkpoint} expects; pass options.shape to state what the bytes hold`);
      }
      return { bytes: images, n: images.length / per };
    }
    if (typeof images !== 'object' || images === null || ArrayBuffer.isView(images) || Array.isArray(images)) {
      throw new TypeError(`${fn}: images must be ${IMAGES}, got ${describe(images)}`);
    }
    if (shape !== undefined) throw new TypeError(`${fn}: options.shape is for raw bytes; an ImageSet carries its own shape`);
    const set = arg(fn, 'images (an ImageSet)', images, IMAGE_SET);
    const expected = set.n * set.channels * set.height * set.width;
    if (set.images.length !== expected) {
      throw new RangeError(`${fn}: ${set.source ?? 'the ImageSet'}: images has ${set.images.length} bytes, expected ${expected} ` +
        `(${set.n}x${set.channels}x${set.height}x${set.width})`);
    }
    checkCompatible(this.meta, set, { classes: false, checkpoint });
    return { bytes: set.images, n: set.n };
  }

  /** Starts the next batch when the model is free. */
  private pump(): void {
    if (this.running || this.queue.length === 0) return;
    this.running = true;
    const group = [this.queue.shift()!];
    let total = group[0].n;
    while (this.queue.length > 0 && total + this.queue[0].n <= this.maxBatch) {
      const next = this.queue.shift()!;
      total += next.n;
      group.push(next);
    }
    void this.runGroup(group).finally(() => {
      this.running = false;
      if (this.closed) this.model.dispose();
      else this.pump();
    });
  }

  private async runGroup(group: Request[]): Promise<void> {
    if (group.length === 1) {
      const [r] = group;
      await this.forward(r.bytes, r.n, r.batchSize, r.logits).then(r.resolve, r.reject);
      return;
    }
    const total = group.reduce((s, r) => s + r.n, 0);
    const bytes = new Uint8Array(total * this.meta.inChannels * this.meta.imageSize ** 2);
    let at = 0;
    for (const r of group) {
      bytes.set(r.bytes, at);
      at += r.bytes.length;
    }
    const sizes = group.map((r) => r.batchSize).filter((b): b is number => b !== undefined);
    const logits = group.some((r) => r.logits);
    let out: Prediction;
    try {
      out = await this.forward(bytes, total, sizes.length ? Math.min(...sizes) : undefined, logits);
    } catch {
      // Only the failing call should fail: run them one by one.
      for (const r of group) await this.forward(r.bytes, r.n, r.batchSize, r.logits).then(r.resolve, r.reject);
      return;
    }
    const k = this.meta.numClasses;
    let first = 0;
    for (const r of group) {
      const preds = out.preds.slice(first, first + r.n);
      r.resolve(r.logits ? { preds, logits: out.logits!.slice(first * k, (first + r.n) * k) } : { preds });
      first += r.n;
    }
  }

  /** One native forward over n images. */
  private async forward(bytes: Uint8Array, n: number, batchSize: number | undefined, logits: boolean): Promise<Prediction> {
    if (n === 1 && PAD_SINGLE_IMAGE && this.model.info.device === 'cpu') {
      const pair = new Uint8Array(2 * bytes.length);
      pair.set(bytes);
      pair.set(bytes, bytes.length);
      const r = await this.forward(pair, 2, batchSize === 1 ? 2 : batchSize, logits);
      return logits ? { preds: r.preds.slice(0, 1), logits: r.logits!.slice(0, this.meta.numClasses) } : { preds: r.preds.slice(0, 1) };
    }
    const { inChannels: c, imageSize: s } = this.meta;
    const data = new Dataset({ images: bytes, labels: new Int32Array(n), n, channels: c, height: s, width: s }, this.model.info.device as Device);
    try {
      const r = await this.model.evaluate(data, { batchSize: batchSize ?? DEFAULT_EVAL_BATCH, normalize: this.meta.normalize, logits });
      return logits ? { preds: r.preds, logits: r.logits } : { preds: r.preds };
    } finally {
      data.dispose();
    }
  }

  /**
   * Frees the model. Calls still queued reject; a running forward finishes first (its callers get
   * their results) and the model is freed when it ends.
   */
  dispose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const r of this.queue.splice(0)) r.reject(new Error('Classifier.predict: the classifier was disposed before this call ran'));
    if (!this.running) this.model.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

const LOAD_OPTIONS = is.options({
  device: is.optional(is.device()),
  maxBatch: is.optional(is.integer({ min: 1 })),
  format: is.optional(is.oneOf(INIT_FORMATS)),
  arch: is.optional(is.oneOf(ARCHS)),
  imageSize: is.optional(is.integer({ min: 1 })),
  inChannels: is.optional(is.integer({ min: 1 })),
  normalize: is.optional(is.object({ mean: is.array(is.number()), std: is.array(is.number()) })),
  classNames: is.optional(is.array(is.string())),
});

export interface LoadModelOptions {
  device?: Device;
  maxBatch?: number;
  /** How the file is read (default 'auto': see src/checkpoint-import.ts). */
  format?: InitFormat;
  /**
   * For a plain torchvision- or timm-named state dict (no btm-node metadata): the architecture (required),
   * and optionally the image size (default: the architecture's), the input channels (default: the file's
   * first convolution's; others are converted as timm does), the normalisation of [0,1] pixels (default
   * none) and the class names. The number of classes is the file's head's.
   */
  arch?: Arch;
  imageSize?: number;
  inChannels?: number;
  normalize?: { mean: number[]; std: number[] };
  classNames?: string[];
}

/**
 * Loads a btm-node checkpoint (safetensors with model metadata) onto a device, or a plain torchvision-
 * or timm-named state dict given `arch` (names converted, see src/checkpoint-import.ts).
 */
export async function loadModel(file: string, opts: LoadModelOptions = {}): Promise<Classifier> {
  arg('loadModel', 'file', file, is.path());
  const o = arg('loadModel', 'options', opts, LOAD_OPTIONS);
  const read = await readInitFile(file, o.format ?? 'auto');
  if (read.kind === 'plain') return loadPlain(read, o);
  const { state, meta } = read.checkpoint;
  const model = new Model({ arch: meta.arch, numClasses: meta.numClasses, inChannels: meta.inChannels, imageSize: meta.imageSize, device: o.device ?? 'cpu' });
  try {
    preparePeftModel(model, meta.peft); // AdaptFormer / adapters / a cosine head
    model.loadStateDict(state);
  } catch (e) {
    model.dispose();
    throw new Error(`${file}: ${(e as Error).message}`);
  }
  return new Classifier(model, meta, { maxBatch: o.maxBatch, source: file });
}

async function loadPlain(read: Extract<InitFile, { kind: 'plain' }>, o: LoadModelOptions): Promise<Classifier> {
  const { file } = read;
  if (!o.arch) {
    throw new Error(`${file}: no btm-node model metadata: read as a plain ${read.layout}-named state dict, it needs the architecture: ` +
      `loadModel(file, { arch: ... }) (one of ${ARCHS.join(', ')})`);
  }
  const shape = plainShape(read, o.arch);
  // without a head (or names read in the wrong layout) the import below fails, listing what is missing
  const numClasses = shape.numClasses ?? 1;
  const model = new Model({
    arch: o.arch, numClasses, inChannels: o.inChannels ?? shape.inChannels ?? 3, ...(o.imageSize ? { imageSize: o.imageSize } : {}), device: o.device ?? 'cpu',
  });
  let meta: ModelMeta;
  try {
    meta = arg('loadModel', 'options', {
      arch: o.arch, numClasses, inChannels: model.info.inChannels, imageSize: model.info.imageSize,
      ...(o.normalize ? { normalize: o.normalize } : {}), ...(o.classNames ? { classNames: o.classNames } : {}),
    }, checkModelMeta);
    model.loadStateDict(importPlainState(read, model.stateDict(), o.arch, 'require').state);
  } catch (e) {
    model.dispose();
    throw e;
  }
  return new Classifier(model, meta, { maxBatch: o.maxBatch, source: file });
}

export interface EvaluateOptions {
  trainCounts?: number[];
  manyThreshold?: number;
  fewThreshold?: number;
  batchSize?: number;
  /** 'five-crop': LIFT's test-time ensemble (src/tta.ts); default 'none'. */
  tta?: TtaMode;
  /** The side images are upscaled to before the five crops (default: the image size x 248/224). */
  ttaResize?: number;
}

const EVALUATE_OPTIONS = is.options({
  trainCounts: is.optional(is.array(is.integer({ min: 0 }))),
  manyThreshold: is.optional(is.number()),
  fewThreshold: is.optional(is.number()),
  batchSize: is.optional(is.integer({ min: 1 })),
  tta: is.optional(is.oneOf(TTA_MODES)),
  ttaResize: is.optional(is.integer({ min: 1 })),
});

/**
 * Accuracy, per-class recall and the long-tail metrics of a classifier on a labelled image set.
 * Refuses, before any work, a set whose image size, channels or class count differ from the model's.
 */
export async function evaluate(classifier: Classifier, set: ImageSet, opts: EvaluateOptions = {}): Promise<Summary> {
  const fn = 'evaluate';
  arg(fn, 'classifier', classifier, is.instance(Classifier));
  arg(fn, 'set', set, LABELLED_SET);
  const o = arg(fn, 'options', opts, EVALUATE_OPTIONS);
  checkCompatible(classifier.meta, set, { checkpoint: classifier.source });
  if (o.trainCounts && o.trainCounts.length !== classifier.meta.numClasses) {
    throw new RangeError(`${fn}: options.trainCounts has ${o.trainCounts.length} entries for ${classifier.meta.numClasses} classes`);
  }
  if (o.tta === 'five-crop') checkTtaResize(fn, classifier.meta, o.ttaResize);
  const { preds } = o.tta === 'five-crop' ? await fiveCropOf(classifier, set, o) : await classifier.predict(set, { batchSize: o.batchSize });
  return summarize(set.labels, preds, classifier.meta.numClasses, o);
}

/** evaluateMultiLabel's result: the per-class AP metrics and the top-1 hit rate (the top-scored class is a label). */
export type MultiLabelEvaluation = MultiLabelSummary & { topHitRate: number };

/**
 * Per-class average precision and its means, minimum and many / medium / few groups
 * (summarizeMultiLabel) of a classifier on a multi-label image set: `targets` is the set's multi-hot
 * labels, [set.n * numClasses] row-major 0/1 (multiHot); the scores are sigmoid(logits). Options as
 * evaluate's, where trainCounts are the training images containing each class. Refuses, before any
 * work, a set of another shape or class count and targets of another length.
 */
export async function evaluateMultiLabel(classifier: Classifier, set: ImageSet, targets: Uint8Array, opts: EvaluateOptions = {}): Promise<MultiLabelEvaluation> {
  const fn = 'evaluateMultiLabel';
  arg(fn, 'classifier', classifier, is.instance(Classifier));
  arg(fn, 'set', set, LABELLED_SET);
  arg(fn, 'targets', targets, is.instance(Uint8Array));
  const o = arg(fn, 'options', opts, EVALUATE_OPTIONS);
  checkCompatible(classifier.meta, set, { checkpoint: classifier.source });
  const C = classifier.meta.numClasses;
  if (targets.length !== set.n * C) throw new RangeError(`${fn}: targets has ${targets.length} entries, expected n * numClasses = ${set.n} * ${C}`);
  if (o.trainCounts && o.trainCounts.length !== C) {
    throw new RangeError(`${fn}: options.trainCounts has ${o.trainCounts.length} entries for ${C} classes`);
  }
  if (o.tta === 'five-crop') checkTtaResize(fn, classifier.meta, o.ttaResize);
  const { logits } = o.tta === 'five-crop' ? await fiveCropOf(classifier, set, o) : await classifier.predict(set, { batchSize: o.batchSize, logits: true });
  const scores = sigmoidScores(logits!);
  return { ...summarizeMultiLabel(targets, scores, C, o), topHitRate: topHitRate(targets, scores, C) };
}

const FIVE_CROP_OPTIONS = is.options({ batchSize: is.optional(is.integer({ min: 1 })), ttaResize: is.optional(is.integer({ min: 1 })) });

function checkTtaResize(fn: string, meta: ModelMeta, resize: number | undefined): void {
  if (resize !== undefined && resize < meta.imageSize) {
    throw new RangeError(`${fn}: options.ttaResize (the side images are upscaled to before the five crops) must be >= the image size ${meta.imageSize}, got ${resize}`);
  }
}

/**
 * LIFT's five-crop test-time ensemble (src/tta.ts) of a classifier on an image set of its shape: the
 * mean of the five crops' logits and its argmax. The crops go through predict's queue.
 */
export async function predictFiveCrop(classifier: Classifier, set: ImageSet, opts: { batchSize?: number; ttaResize?: number } = {}): Promise<Prediction & { logits: Float32Array }> {
  const fn = 'predictFiveCrop';
  arg(fn, 'classifier', classifier, is.instance(Classifier));
  arg(fn, 'set', set, IMAGE_SET);
  const o = arg(fn, 'options', opts, FIVE_CROP_OPTIONS);
  checkCompatible(classifier.meta, set, { checkpoint: classifier.source });
  checkTtaResize(fn, classifier.meta, o.ttaResize);
  return fiveCropOf(classifier, set, o);
}

function fiveCropOf(classifier: Classifier, set: ImageSet, opts: { batchSize?: number; ttaResize?: number }): Promise<Prediction & { logits: Float32Array }> {
  const { imageSize: s, inChannels: c, numClasses } = classifier.meta;
  return fiveCropEnsemble(set, s, numClasses, { resize: opts.ttaResize }, async (crops, count) =>
    (await classifier.predict(crops, { shape: [count, c, s, s], logits: true, batchSize: opts.batchSize })).logits!);
}
