/**
 * The binary versions of CIFAR-10 and CIFAR-100 (https://www.cs.toronto.edu/~kriz/cifar.html).
 * A batch file is a run of fixed-size records: the label byte(s) (CIFAR-100: coarse, then fine), then
 * 3072 pixel bytes - the R, G and B planes of a 32x32 image, row-major - which is already CHW order.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { arg, is } from '../args.js';
import { readUserText } from '../user-file.js';
import { type ImageSet, readByteLabels, readDataFile, validateImageSet } from './image-set.js';

export type CifarVariant = 'cifar10' | 'cifar100';

const CHANNELS = 3;
const SIDE = 32;
const PIXELS = CHANNELS * SIDE * SIDE;

const LAYOUTS = {
  cifar10: {
    labelBytes: 1,
    numClasses: 10,
    folder: 'cifar-10-batches-bin',
    train: [1, 2, 3, 4, 5].map((i) => `data_batch_${i}.bin`),
    test: ['test_batch.bin'],
    namesFile: 'batches.meta.txt',
  },
  cifar100: {
    labelBytes: 2,
    numClasses: 100,
    folder: 'cifar-100-binary',
    train: ['train.bin'],
    test: ['test.bin'],
    namesFile: 'fine_label_names.txt',
  },
} as const;

const CIFAR100_COARSE_CLASSES = 20;

/**
 * Reads one CIFAR binary batch file (plain or gzipped) into a 3x32x32 NCHW image set.
 * For CIFAR-100 the fine label is the label; the coarse label is range-checked and dropped.
 */
export function readCifarBatch(path: string, variant: CifarVariant): ImageSet {
  const { labelBytes, numClasses } = LAYOUTS[variant];
  const record = labelBytes + PIXELS;
  const bytes = readDataFile(path, `${variant} batch file`);
  if (bytes.length === 0) throw new Error(`${path}: empty file, no ${variant} records`);
  const n = Math.floor(bytes.length / record);
  if (bytes.length % record !== 0) {
    throw new Error(
      `${path}: size ${bytes.length} bytes is not a multiple of the ${variant} record size ${record} ` +
        `(${labelBytes} label byte(s) + ${PIXELS} pixel bytes); record ${n} at offset ${n * record} is truncated`,
    );
  }
  const labelLayout = { count: n, stride: record };
  if (variant === 'cifar100') {
    readByteLabels(path, bytes, { ...labelLayout, numClasses: CIFAR100_COARSE_CLASSES, kind: 'coarse label' });
  }
  const fine = labelBytes - 1;
  const labels = readByteLabels(path, bytes.subarray(fine), { ...labelLayout, numClasses, fileOffset: fine });
  const images = new Uint8Array(n * PIXELS);
  for (let i = 0; i < n; i++) images.set(bytes.subarray(i * record + labelBytes, (i + 1) * record), i * PIXELS);
  return validateImageSet({ images, labels, n, channels: CHANNELS, height: SIDE, width: SIDE, numClasses, source: path });
}

export interface CifarOptions {
  /** The extracted folder (cifar-10-batches-bin / cifar-100-binary) or the folder that contains it. */
  dir: string;
  variant: CifarVariant;
  split: 'train' | 'test';
}

/**
 * Loads a CIFAR split from its standard batch files, concatenated in order, with class names from
 * batches.meta.txt (CIFAR-10) or fine_label_names.txt (CIFAR-100) when that file is present.
 */
export function loadCifar(options: CifarOptions): ImageSet {
  const { dir, variant, split } = arg('loadCifar', 'options', options, is.object({
    dir: is.path(), variant: is.oneOf(['cifar10', 'cifar100']), split: is.oneOf(['train', 'test']),
  }));
  const layout = LAYOUTS[variant];
  const root = existsSync(join(dir, layout.folder)) ? join(dir, layout.folder) : dir;
  const files = layout[split].map((name) => join(root, name));
  const missing = files.find((file) => !existsSync(file));
  if (missing) {
    throw new Error(`${variant} ${split} batch ${missing} not found: pass the ${layout.folder} folder or its parent as dir`);
  }
  const batches = files.map((file) => readCifarBatch(file, variant));
  const n = batches.reduce((sum, batch) => sum + batch.n, 0);
  const images = new Uint8Array(n * PIXELS);
  const labels = new Int32Array(n);
  let at = 0;
  for (const batch of batches) {
    images.set(batch.images, at * PIXELS);
    labels.set(batch.labels, at);
    at += batch.n;
  }
  const namesPath = join(root, layout.namesFile);
  return validateImageSet({
    images,
    labels,
    n,
    channels: CHANNELS,
    height: SIDE,
    width: SIDE,
    numClasses: layout.numClasses,
    classNames: existsSync(namesPath) ? readClassNames(namesPath, layout.numClasses) : undefined,
    source: `${root} (${variant} ${split})`,
  });
}

/** Reads one class name per non-blank line, requiring exactly `numClasses` of them. */
function readClassNames(path: string, numClasses: number): string[] {
  const names = readUserText(path, 'class names file')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
  if (names.length !== numClasses) throw new Error(`${path}: ${names.length} class names, expected ${numClasses}`);
  return names;
}
