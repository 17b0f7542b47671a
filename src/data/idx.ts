/**
 * The IDX format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/): a big-endian magic
 * 0x00 0x00 <type> <ndims>, ndims big-endian uint32 dimension sizes, then the data in row-major order.
 * Images are unsigned bytes (type 0x08); labels are unsigned bytes or, for more than 256 classes,
 * big-endian int32 (type 0x0C). Files may be gzipped.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { arg, is } from '../args.js';
import { type ImageSet, readByteLabels, readDataFile, validateImageSet } from './image-set.js';

/** A decoded unsigned-byte IDX file. */
export interface IdxFile {
  dims: number[];
  /** prod(dims) bytes, row-major. */
  data: Uint8Array;
}

const hex32 = (value: number) => `0x${value.toString(16).padStart(8, '0')}`;

const ELEMENT_BYTES: Record<number, number> = { 0x08: 1, 0x0c: 4 };

/** Header check shared by the readers: magic, rank, dims and the exact file size for the element type. */
function parseIdx(path: string, ndims: number | undefined, types: number[]): { dims: number[]; type: number; body: Uint8Array } {
  const bytes = readDataFile(path, 'IDX file');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4) throw new Error(`${path}: truncated at offset ${bytes.length}, before the end of the 4-byte magic`);
  const magic = view.getUint32(0);
  const rank = magic & 0xff;
  const type = magic >>> 8;
  if (!types.includes(type) || rank === 0 || (ndims !== undefined && rank !== ndims)) {
    const nn = ndims === undefined ? 'NN' : ndims.toString(16).padStart(2, '0');
    const kinds = types.map((t) => `0x0000${t.toString(16).padStart(2, '0')}${nn}`).join(' or ');
    const what = types.length > 1 ? 'unsigned-byte or int32 data' : 'unsigned-byte data';
    throw new Error(`${path}: bad magic ${hex32(magic)} at offset 0, expected ${kinds} (${what}${ndims === undefined ? ' with NN dimensions' : ''})`);
  }
  const headerSize = 4 + 4 * rank;
  if (bytes.length < headerSize) {
    throw new Error(`${path}: truncated at offset ${bytes.length}, inside the ${headerSize}-byte header of ${rank} dimensions`);
  }
  const dims = Array.from({ length: rank }, (_, i) => view.getUint32(4 + 4 * i));
  const size = ELEMENT_BYTES[type];
  const expectedSize = headerSize + dims.reduce((a, b) => a * b, 1) * size;
  if (bytes.length !== expectedSize) {
    const problem = bytes.length < expectedSize ? 'truncated' : 'unexpected trailing bytes';
    throw new Error(
      `${path}: ${problem} at offset ${Math.min(bytes.length, expectedSize)}: size ${bytes.length} bytes, ` +
        `expected ${expectedSize} (${headerSize}-byte header + ${dims.join('x')} ${size === 1 ? 'bytes' : `${size}-byte values`})`,
    );
  }
  return { dims, type, body: bytes.subarray(headerSize) };
}

/**
 * Reads an unsigned-byte IDX file, plain or gzipped. When `ndims` is given the file must have exactly
 * that many dimensions. Errors name the file and the byte offset of the problem.
 */
export function readIdx(path: string, ndims?: number): IdxFile {
  const { dims, body } = parseIdx(path, ndims, [0x08]);
  return { dims, data: new Uint8Array(body) };
}

/**
 * Reads a one-dimensional IDX label file of unsigned bytes or big-endian int32 values; every label
 * must be in [0, numClasses) (the error names the file, the sample and its byte offset).
 */
export function readIdxLabels(path: string, numClasses: number): Int32Array {
  const { dims, type, body } = parseIdx(path, 1, [0x08, 0x0c]);
  if (type === 0x08) return readByteLabels(path, new Uint8Array(body), { count: dims[0], numClasses, fileOffset: 8 });
  const view = new DataView(body.buffer, body.byteOffset, body.byteLength);
  const labels = new Int32Array(dims[0]);
  for (let i = 0; i < labels.length; i++) {
    const label = view.getInt32(4 * i);
    if (label < 0 || label >= numClasses) {
      throw new Error(`${path}: label ${label} of sample ${i} at offset ${8 + 4 * i} is outside [0, ${numClasses})`);
    }
    labels[i] = label;
  }
  return labels;
}

export interface IdxDatasetOptions {
  /** IDX file of dims [N, H, W]. */
  imagesPath: string;
  /** IDX file of dims [N]. */
  labelsPath: string;
  numClasses?: number;
  classNames?: string[];
}

/** Loads a grayscale (channels = 1) image set from an images and a labels IDX file. */
export function loadIdxDataset(options: IdxDatasetOptions): ImageSet {
  const { imagesPath, labelsPath, numClasses = 10, classNames } = arg('loadIdxDataset', 'options', options, is.object({
    imagesPath: is.path(), labelsPath: is.path(), numClasses: is.optional(is.integer({ min: 1, max: 1 << 24 })),
    classNames: is.optional(is.array(is.string())),
  }));
  const images = readIdx(imagesPath, 3);
  const labels = readIdxLabels(labelsPath, numClasses);
  const [n, height, width] = images.dims;
  if (labels.length !== n) {
    throw new Error(`${imagesPath} has ${n} images but ${labelsPath} has ${labels.length} labels`);
  }
  return validateImageSet({
    images: images.data,
    labels,
    n,
    channels: 1,
    height,
    width,
    numClasses,
    classNames,
    source: imagesPath,
  });
}

/** Where the `dataset-fashion-mnist` package installs Fashion-MNIST. */
export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

export const FASHION_MNIST_CLASSES = [
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
];

/**
 * Loads the Fashion-MNIST train (60000) or test (10000) split from `dir`, which holds the standard
 * files `{train,t10k}-{images-idx3,labels-idx1}-ubyte`, gzipped (.gz) or not.
 */
export function loadFashionMnist(split: 'train' | 'test', dir: string = FASHION_MNIST_DIR): ImageSet {
  arg('loadFashionMnist', 'split', split, is.oneOf(['train', 'test']));
  arg('loadFashionMnist', 'dir', dir, is.path());
  if (!existsSync(dir)) {
    throw new Error(
      `Fashion-MNIST directory ${dir} not found: install it with \`apt-get install dataset-fashion-mnist\` ` +
        'or pass the directory that holds the IDX files',
    );
  }
  const prefix = split === 'train' ? 'train' : 't10k';
  // Prefer the gzipped file; if neither exists, reading the .gz name reports it as missing.
  const file = (name: string) => [`${name}.gz`, name].map((f) => join(dir, f)).find((f) => existsSync(f)) ?? join(dir, `${name}.gz`);
  return loadIdxDataset({
    imagesPath: file(`${prefix}-images-idx3-ubyte`),
    labelsPath: file(`${prefix}-labels-idx1-ubyte`),
    numClasses: 10,
    classNames: [...FASHION_MNIST_CLASSES],
  });
}
