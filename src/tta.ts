/**
 * Test-time ensembling over crops, as LIFT does (shijxcs/LIFT trainer.py, `tte_mode: fivecrop`):
 * each test image is upscaled (torchvision `Resize(resolution + expand)`, LIFT's expand 24 at 224, i.e.
 * 224 -> 248), cut into five crops of the model's size (torchvision `FiveCrop`: the four corners and
 * the centre), and the model's LOGITS on the five are averaged (LIFT: `output.view(bsz, ncrops, -1).mean(dim=1)`,
 * before any softmax); the prediction is the averaged logits' argmax.
 *
 * The upscale is Pillow's bilinear resize (what torchvision's Resize does to a PIL image, as in LIFT):
 * separable, the horizontal pass first, each pass with Pillow's 22-bit fixed-point weights and
 * rounded to uint8 (test/tta.test.ts checks it against Debian's Pillow bit for bit).
 */
import { Dataset as DatasetClass, type DatasetSource } from './dataset.js';
import type { Device } from './device.js';
import { arg, is } from './args.js';
import { Model as ModelClass, type Model, type Normalization } from './model.js';

export const TTA_MODES = ['none', 'five-crop'] as const;
export type TtaMode = (typeof TTA_MODES)[number];

/** LIFT's upscale for an image side: 224 -> 248 (expand 24), proportionally for other sizes (28 -> 31, 32 -> 35). */
export function defaultTtaResize(size: number): number {
  return Math.round((size * 248) / 224);
}

const PRECISION_BITS = 32 - 8 - 2;

/** Pillow's precompute_coeffs for the bilinear filter: per output pixel, the first input index and fixed-point weights. */
function bilinearCoeffs(inSize: number, outSize: number): { bounds: Int32Array; ksize: number; kk: Int32Array } {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = 1 * filterscale; // bilinear support 1
  const ksize = Math.ceil(support) * 2 + 1;
  const bounds = new Int32Array(outSize * 2);
  const kk = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const ss = 1 / filterscale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      w[x] = t < 1 ? 1 - t : 0;
      ww += w[x];
    }
    for (let x = 0; x < xmax; x++) {
      const v = ww !== 0 ? w[x] / ww : w[x];
      kk[xx * ksize + x] = Math.trunc(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
    }
    bounds[xx * 2] = xmin;
    bounds[xx * 2 + 1] = xmax;
  }
  return { bounds, ksize, kk };
}

function clip8(v: number): number {
  if (v >= 256 * (1 << PRECISION_BITS)) return 255;
  if (v <= 0) return 0;
  return Math.floor(v / (1 << PRECISION_BITS));
}

/**
 * Resizes uint8 images [n, c, h, w] to [n, c, outH, outW] as Pillow's `Image.resize((outW, outH), BILINEAR)`
 * does on each channel (for the upscales used here; a downscale widens the filter, as Pillow does).
 */
export function resizeBilinear(images: Uint8Array, n: number, c: number, h: number, w: number, outH: number, outW: number): Uint8Array {
  const hc = bilinearCoeffs(w, outW);
  const vc = bilinearCoeffs(h, outH);
  const tmp = new Uint8Array(h * outW);
  const out = new Uint8Array(n * c * outH * outW);
  const half = 1 << (PRECISION_BITS - 1);
  for (let p = 0; p < n * c; p++) {
    const src = images.subarray(p * h * w, (p + 1) * h * w);
    for (let y = 0; y < h; y++) {
      for (let xx = 0; xx < outW; xx++) {
        const xmin = hc.bounds[xx * 2], xmax = hc.bounds[xx * 2 + 1];
        let ss = half;
        for (let x = 0; x < xmax; x++) ss += src[y * w + x + xmin] * hc.kk[xx * hc.ksize + x];
        tmp[y * outW + xx] = clip8(ss);
      }
    }
    const dst = out.subarray(p * outH * outW, (p + 1) * outH * outW);
    for (let yy = 0; yy < outH; yy++) {
      const ymin = vc.bounds[yy * 2], ymax = vc.bounds[yy * 2 + 1];
      for (let xx = 0; xx < outW; xx++) {
        let ss = half;
        for (let y = 0; y < ymax; y++) ss += tmp[(y + ymin) * outW + xx] * vc.kk[yy * vc.ksize + y];
        dst[yy * outW + xx] = clip8(ss);
      }
    }
  }
  return out;
}

/** Python's round() (half to even), as torchvision's center_crop uses. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** torchvision FiveCrop's [top, left] offsets in an H x W image for size x size crops: top-left, top-right, bottom-left, bottom-right, centre. */
export function fiveCropOffsets(h: number, w: number, size: number): [number, number][] {
  if (size > h || size > w) throw new RangeError(`five-crop: crop size ${size} is larger than the image (${h}x${w})`);
  return [[0, 0], [0, w - size], [h - size, 0], [h - size, w - size], [roundHalfEven((h - size) / 2), roundHalfEven((w - size) / 2)]];
}

/** The size x size crop at [top, left] of each image [n, c, h, w]. */
export function cropImages(images: Uint8Array, n: number, c: number, h: number, w: number, top: number, left: number, size: number): Uint8Array {
  const out = new Uint8Array(n * c * size * size);
  for (let p = 0; p < n * c; p++) {
    for (let y = 0; y < size; y++) {
      const from = p * h * w + (top + y) * w + left;
      out.set(images.subarray(from, from + size), (p * size + y) * size);
    }
  }
  return out;
}

/** The five crops of the upscaled images, crop-major: crop k of image i is image k * n + i. */
export function fiveCrops(images: Uint8Array, n: number, c: number, size: number, resize: number): Uint8Array {
  const big = resizeBilinear(images, n, c, size, size, resize, resize);
  const out = new Uint8Array(5 * n * c * size * size);
  fiveCropOffsets(resize, resize, size).forEach(([top, left], k) => {
    out.set(cropImages(big, n, c, resize, resize, top, left, size), k * n * c * size * size);
  });
  return out;
}

export interface TtaOptions {
  /** The side the images are upscaled to before cropping (default {@link defaultTtaResize}). */
  resize?: number;
  normalize?: Normalization;
  /** Images per native forward. */
  batchSize?: number;
  /** Test images handled at a time (their 5 crops are made and evaluated together; default 512). */
  chunk?: number;
  device?: Device;
}

/**
 * Five-crop test-time ensemble on square uint8 images [n, c, size, size]: `logitsOf` evaluates a batch of
 * crops (crop-major, `count` images) and returns their logits; the result is the mean of the five crops'
 * logits (summed in crop order in float64, divided by 5) and its argmax.
 */
export async function fiveCropEnsemble(
  source: Pick<DatasetSource, 'images' | 'n' | 'channels' | 'height' | 'width'>, size: number, numClasses: number,
  opts: { resize?: number; chunk?: number; where?: string },
  logitsOf: (crops: Uint8Array, count: number) => Promise<Float32Array>,
): Promise<{ preds: Int32Array; logits: Float32Array }> {
  const { n, channels: c, height, width } = source;
  if (height !== width || height !== size) {
    throw new RangeError(`${opts.where ?? 'five-crop'}: the images are ${height}x${width}, the model takes ${size}x${size} (crops are the model's size, of square images)`);
  }
  const resize = opts.resize ?? defaultTtaResize(size);
  if (!Number.isInteger(resize) || resize < size) throw new RangeError(`${opts.where ?? 'five-crop'}: the upscaled side (eval.ttaResize, options.resize) must be an integer >= the image size ${size}, got ${resize}`);
  const chunk = opts.chunk ?? 512;
  const preds = new Int32Array(n);
  const logits = new Float32Array(n * numClasses);
  const pix = c * size * size;
  for (let start = 0; start < n; start += chunk) {
    const m = Math.min(chunk, n - start);
    const crops = fiveCrops(source.images.subarray(start * pix, (start + m) * pix), m, c, size, resize);
    const avg = averageCropLogits(await logitsOf(crops, 5 * m), m, numClasses);
    logits.set(avg, start * numClasses);
    preds.set(argmaxRows(avg, m, numClasses), start);
  }
  return { preds, logits };
}

/** fiveCropEnsemble of a Model (the pipeline's final evaluation). */
export async function evaluateFiveCrop(model: Model, source: Pick<DatasetSource, 'images' | 'n' | 'channels' | 'height' | 'width'>, opts: TtaOptions = {}): Promise<{ preds: Int32Array; logits: Float32Array }> {
  const fn = 'evaluateFiveCrop';
  arg(fn, 'model', model, is.instance(ModelClass));
  arg(fn, 'source', source, is.object({
    images: is.instance(Uint8Array), n: is.integer({ min: 0 }), channels: is.integer({ min: 1 }), height: is.integer({ min: 1 }), width: is.integer({ min: 1 }),
  }, { extra: true }));
  arg(fn, 'options', opts, is.options({
    resize: is.optional(is.integer({ min: 1 })), normalize: is.optional(is.object({ mean: is.array(is.number()), std: is.array(is.number()) })),
    batchSize: is.optional(is.integer({ min: 1 })), chunk: is.optional(is.integer({ min: 1 })), device: is.optional(is.device()),
  }));
  const { imageSize: size, numClasses } = model.info;
  if (source.images.length !== source.n * source.channels * source.height * source.width) {
    throw new RangeError(`${fn}: source.images has ${source.images.length} bytes, n x channels x height x width = ${source.n * source.channels * source.height * source.width}`);
  }
  return fiveCropEnsemble(source, size, numClasses, { ...opts, where: fn }, async (crops, count) => {
    using ds = new DatasetClass({ images: crops, labels: new Int32Array(count), n: count, channels: source.channels, height: size, width: size }, opts.device ?? (model.info.device as Device));
    return (await model.evaluate(ds, { logits: true, normalize: opts.normalize, batchSize: opts.batchSize })).logits!;
  });
}

/** Mean over the 5 crops (crop-major [5, m, C]) of the logits: summed in crop order in float64, then / 5. */
export function averageCropLogits(cropLogits: Float32Array, m: number, numClasses: number): Float32Array {
  const out = new Float32Array(m * numClasses);
  for (let i = 0; i < m * numClasses; i++) {
    let s = 0;
    for (let k = 0; k < 5; k++) s += cropLogits[k * m * numClasses + i];
    out[i] = s / 5;
  }
  return out;
}

/** Per row the index of the largest value (the first on ties). */
export function argmaxRows(x: Float32Array, m: number, numClasses: number): Int32Array {
  const out = new Int32Array(m);
  for (let i = 0; i < m; i++) {
    let best = 0;
    for (let j = 1; j < numClasses; j++) if (x[i * numClasses + j] > x[i * numClasses + best]) best = j;
    out[i] = best;
  }
  return out;
}
