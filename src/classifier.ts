/** A trained model ready to use: weights plus how to feed it (normalisation, image size, classes). */
import { readCheckpoint, type ModelMeta } from './checkpoint.js';
import type { ImageSet } from './data/image-set.js';
import { Dataset } from './dataset.js';
import type { Device } from './device.js';
import { summarize, type Summary } from './metrics.js';
import { Model } from './model.js';

export class Classifier implements Disposable {
  constructor(
    readonly model: Model,
    readonly meta: ModelMeta,
  ) {}

  /**
   * Predicted class per image. `images` is uint8 NCHW with the model's channels and image size
   * (n * inChannels * imageSize^2 bytes), or an ImageSet.
   */
  async predict(images: Uint8Array | ImageSet, opts: { batchSize?: number; logits?: boolean } = {}): Promise<{ preds: Int32Array; logits?: Float32Array }> {
    const { inChannels: c, imageSize: s } = this.meta;
    const set = images instanceof Uint8Array ? undefined : images;
    const bytes = set ? set.images : (images as Uint8Array);
    const per = c * s * s;
    if (bytes.length % per !== 0) {
      throw new RangeError(`predict: images has ${bytes.length} bytes, not a multiple of inChannels*imageSize^2 = ${per}`);
    }
    const n = bytes.length / per;
    const data = new Dataset({ images: bytes, labels: new Int32Array(n), n, channels: c, height: s, width: s }, this.model.info.device as Device);
    try {
      const r = await this.model.evaluate(data, { batchSize: opts.batchSize ?? 256, normalize: this.meta.normalize, logits: opts.logits });
      return { preds: r.preds, logits: r.logits };
    } finally {
      data.dispose();
    }
  }

  dispose(): void {
    this.model.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Loads a btm-node checkpoint (safetensors with model metadata) onto a device. */
export async function loadModel(file: string, opts: { device?: Device } = {}): Promise<Classifier> {
  const { state, meta } = await readCheckpoint(file);
  const model = new Model({ arch: meta.arch, numClasses: meta.numClasses, inChannels: meta.inChannels, device: opts.device ?? 'cpu' });
  try {
    model.loadStateDict(state);
  } catch (e) {
    model.dispose();
    throw new Error(`${file}: ${(e as Error).message}`);
  }
  return new Classifier(model, meta);
}

/** Accuracy, per-class recall and the long-tail metrics of a classifier on a labelled image set. */
export async function evaluate(
  classifier: Classifier,
  set: ImageSet,
  opts: { trainCounts?: number[]; manyThreshold?: number; fewThreshold?: number; batchSize?: number } = {},
): Promise<Summary> {
  const { preds } = await classifier.predict(set, { batchSize: opts.batchSize });
  return summarize(set.labels, preds, classifier.meta.numClasses, opts);
}
