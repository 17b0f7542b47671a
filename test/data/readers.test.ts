import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCifar, readCifarBatch } from '../../src/data/cifar.js';
import { FASHION_MNIST_DIR, loadFashionMnist, loadIdxDataset, readIdx } from '../../src/data/idx.js';
import { type ImageSet, validateImageSet } from '../../src/data/image-set.js';

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), 'btm-readers-'));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

/** Writes `bytes` to a fresh file under the temp dir and returns its path. */
function write(name: string, bytes: Uint8Array): string {
  const path = join(tmp, name);
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, bytes);
  return path;
}

/** An unsigned-byte IDX file: magic 0x000008<ndims>, big-endian dims, then `data`. */
function idx(dims: number[], data: ArrayLike<number>, magic = 0x800 + dims.length): Buffer {
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([header, Buffer.from(Array.from(data))]);
}

// 3 images of 2x4 with pixel (i, y, x) = 10i + 4y + x, labels 7, 0, 9.
const IMAGE_PIXELS = Array.from({ length: 3 * 2 * 4 }, (_, k) => 10 * Math.floor(k / 8) + (k % 8));
const LABELS = [7, 0, 9];

describe('IDX reader', () => {
  it('reads plain IDX files into a 1-channel image set', () => {
    const set = loadIdxDataset({
      imagesPath: write('plain/images', idx([3, 2, 4], IMAGE_PIXELS)),
      labelsPath: write('plain/labels', idx([3], LABELS)),
    });
    expect(set).toMatchObject({ n: 3, channels: 1, height: 2, width: 4, numClasses: 10 });
    expect(Array.from(set.labels)).toEqual(LABELS);
    expect(set.images[(2 * 2 + 1) * 4 + 3]).toBe(10 * 2 + 4 * 1 + 3); // image 2, row 1, column 3
    expect(set.images.byteOffset).toBe(0);
  });

  it('reads gzipped IDX files the same as plain ones', () => {
    const plain = readIdx(write('gz/images', idx([3, 2, 4], IMAGE_PIXELS)));
    const gzipped = readIdx(write('gz/images.gz', gzipSync(idx([3, 2, 4], IMAGE_PIXELS))));
    expect(gzipped.dims).toEqual([3, 2, 4]);
    expect(gzipped).toEqual(plain);
  });

  it('rejects a truncated file, naming it and the offset', () => {
    const path = write('bad/truncated', idx([3, 2, 4], IMAGE_PIXELS).subarray(0, 16 + 20));
    expect(() => readIdx(path)).toThrow(`${path}: truncated at offset 36: size 36 bytes, expected 40`);
    const header = write('bad/truncated-header', idx([3, 2, 4], []).subarray(0, 10));
    expect(() => readIdx(header)).toThrow(`${header}: truncated at offset 10, inside the 16-byte header`);
  });

  it('rejects trailing bytes', () => {
    const path = write('bad/trailing', Buffer.concat([idx([3], LABELS), Buffer.from([1])]));
    expect(() => readIdx(path)).toThrow(`${path}: unexpected trailing bytes at offset 11`);
  });

  it('rejects a bad magic, naming the file and the expected magic', () => {
    const labelsPath = write('bad/magic-labels.gz', gzipSync(idx([3], LABELS, 0x803)));
    expect(() => loadIdxDataset({ imagesPath: write('bad/ok-images', idx([3, 2, 4], IMAGE_PIXELS)), labelsPath })).toThrow(
      `${labelsPath}: bad magic 0x00000803 at offset 0, expected 0x00000801`,
    );
    const float = write('bad/float', idx([3], LABELS, 0x0d01));
    expect(() => readIdx(float)).toThrow(`${float}: bad magic 0x00000d01 at offset 0, expected 0x000008NN`);
  });

  it('rejects corrupt gzip data', () => {
    const path = write('bad/cut.gz', gzipSync(idx([3], LABELS)).subarray(0, 12));
    expect(() => readIdx(path)).toThrow(`${path}: cannot gunzip`);
  });

  it('rejects mismatched image and label counts, naming both files', () => {
    const imagesPath = write('count/images', idx([3, 2, 4], IMAGE_PIXELS));
    const labelsPath = write('count/labels', idx([2], [1, 2]));
    expect(() => loadIdxDataset({ imagesPath, labelsPath })).toThrow(`${imagesPath} has 3 images but ${labelsPath} has 2 labels`);
  });

  it('rejects an out-of-range label, naming the file, sample and offset', () => {
    const imagesPath = write('range/images', idx([3, 2, 4], IMAGE_PIXELS));
    const labelsPath = write('range/labels', idx([3], [1, 2, 10]));
    expect(() => loadIdxDataset({ imagesPath, labelsPath })).toThrow(
      `${labelsPath}: label 10 of sample 2 at offset 10 is outside [0, 10)`,
    );
    expect(loadIdxDataset({ imagesPath, labelsPath, numClasses: 11 }).numClasses).toBe(11);
  });

  it('explains how to get Fashion-MNIST when its directory is missing', () => {
    expect(() => loadFashionMnist('test', join(tmp, 'nowhere'))).toThrow('apt-get install dataset-fashion-mnist');
  });

  const haveFashion = existsSync(FASHION_MNIST_DIR);
  if (!haveFashion) console.log(`skipping the real Fashion-MNIST test: ${FASHION_MNIST_DIR} not found (apt-get install dataset-fashion-mnist)`);
  it.skipIf(!haveFashion)('reads the real Fashion-MNIST test set', () => {
    const set = loadFashionMnist('test');
    expect(set).toMatchObject({ n: 10000, channels: 1, height: 28, width: 28, numClasses: 10 });
    expect(set.images.length).toBe(10000 * 28 * 28);
    expect(set.classNames).toHaveLength(10);
    const counts = new Array(10).fill(0);
    for (const label of set.labels) counts[label]++;
    expect(counts).toEqual(new Array(10).fill(1000));
  });
});

/** Pixel (record i, channel c, row y, column x) of the CIFAR fixtures. */
const pixel = (i: number, c: number, y: number, x: number) => (31 * i + 80 * c + 5 * y + x) & 0xff;

/** CIFAR records with the given label bytes per record and {@link pixel} values, numbered from `first`. */
function cifarRecords(labelBytes: number[][], first = 0): Buffer {
  return Buffer.concat(
    labelBytes.map((label, r) => {
      const planes = Array.from({ length: 3 * 32 * 32 }, (_, k) => pixel(first + r, k >> 10, (k >> 5) & 31, k & 31));
      return Buffer.from([...label, ...planes]);
    }),
  );
}

describe('CIFAR reader', () => {
  const cifar10Names = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

  it('reads a CIFAR-10 batch in NCHW layout', () => {
    const path = write('c10/batch.bin', cifarRecords([[3], [9], [0]]));
    const set = readCifarBatch(path, 'cifar10');
    expect(set).toMatchObject({ n: 3, channels: 3, height: 32, width: 32, numClasses: 10, source: path });
    expect(Array.from(set.labels)).toEqual([3, 9, 0]);
    const at = (i: number, c: number, y: number, x: number) => set.images[((i * 3 + c) * 32 + y) * 32 + x];
    expect(at(1, 2, 7, 30)).toBe(pixel(1, 2, 7, 30)); // record 1, blue plane, row 7, column 30
    expect(at(2, 0, 31, 0)).toBe(pixel(2, 0, 31, 0));
  });

  it('loads the CIFAR-10 splits from the extracted folder or its parent, with class names', () => {
    const folder = join(tmp, 'c10-root', 'cifar-10-batches-bin');
    for (let b = 1; b <= 5; b++) write(`c10-root/cifar-10-batches-bin/data_batch_${b}.bin`, cifarRecords([[b], [b + 1]], 2 * (b - 1)));
    write('c10-root/cifar-10-batches-bin/test_batch.bin', cifarRecords([[4]]));
    write('c10-root/cifar-10-batches-bin/batches.meta.txt', Buffer.from(`${cifar10Names.join('\n')}\n\n`));
    const train = loadCifar({ dir: join(tmp, 'c10-root'), variant: 'cifar10', split: 'train' });
    expect(train.n).toBe(10);
    expect(Array.from(train.labels)).toEqual([1, 2, 2, 3, 3, 4, 4, 5, 5, 6]);
    expect(train.images[((7 * 3 + 1) * 32 + 3) * 32 + 4]).toBe(pixel(7, 1, 3, 4));
    expect(train.classNames).toEqual(cifar10Names);
    const test = loadCifar({ dir: folder, variant: 'cifar10', split: 'test' });
    expect(test).toMatchObject({ n: 1, classNames: cifar10Names });
    expect(() => loadCifar({ dir: join(tmp, 'c10'), variant: 'cifar10', split: 'test' })).toThrow(
      `test_batch.bin not found: pass the cifar-10-batches-bin folder or its parent`,
    );
  });

  it('reads CIFAR-100 fine labels after the coarse label', () => {
    write('c100/cifar-100-binary/train.bin', cifarRecords([[19, 99], [0, 42]]));
    write('c100/cifar-100-binary/test.bin', cifarRecords([[5, 7]]));
    const set = loadCifar({ dir: join(tmp, 'c100'), variant: 'cifar100', split: 'train' });
    expect(set).toMatchObject({ n: 2, channels: 3, numClasses: 100, classNames: undefined });
    expect(Array.from(set.labels)).toEqual([99, 42]);
    expect(set.images[((1 * 3 + 1) * 32 + 31) * 32 + 31]).toBe(pixel(1, 1, 31, 31));
    expect(loadCifar({ dir: join(tmp, 'c100'), variant: 'cifar100', split: 'test' }).labels[0]).toBe(7);
  });

  it('rejects a truncated batch, naming the file, its size and the record size', () => {
    const path = write('bad/c10-truncated.bin', cifarRecords([[1], [2]]).subarray(0, 3073 + 100));
    expect(() => readCifarBatch(path, 'cifar10')).toThrow(
      `${path}: size 3173 bytes is not a multiple of the cifar10 record size 3073`,
    );
    expect(() => readCifarBatch(path, 'cifar10')).toThrow('record 1 at offset 3073 is truncated');
    const c100 = write('bad/c100-truncated.bin', cifarRecords([[1, 2]]).subarray(0, 3073));
    expect(() => readCifarBatch(c100, 'cifar100')).toThrow(`${c100}: size 3073 bytes is not a multiple of the cifar100 record size 3074`);
  });

  it('rejects an out-of-range label, naming the file, record and offset', () => {
    const c10 = write('bad/c10-label.bin', cifarRecords([[1], [10]]));
    expect(() => readCifarBatch(c10, 'cifar10')).toThrow(`${c10}: label 10 of sample 1 at offset 3073 is outside [0, 10)`);
    const fine = write('bad/c100-fine.bin', cifarRecords([[1, 2], [3, 4], [5, 100]]));
    expect(() => readCifarBatch(fine, 'cifar100')).toThrow(`${fine}: label 100 of sample 2 at offset 6149 is outside [0, 100)`);
    const coarse = write('bad/c100-coarse.bin', cifarRecords([[1, 2], [20, 4]]));
    expect(() => readCifarBatch(coarse, 'cifar100')).toThrow(`${coarse}: coarse label 20 of sample 1 at offset 3074`);
  });
});

describe('validateImageSet', () => {
  const base = (): ImageSet => ({
    images: new Uint8Array(2 * 3 * 4 * 5),
    labels: Int32Array.from([0, 2]),
    n: 2,
    channels: 3,
    height: 4,
    width: 5,
    numClasses: 3,
    source: 'fixture',
  });

  it('accepts a consistent set and names the source and problem otherwise', () => {
    expect(validateImageSet(base()).n).toBe(2);
    expect(() => validateImageSet({ ...base(), images: new Uint8Array(5) })).toThrow('fixture: images has 5 bytes, expected 120');
    expect(() => validateImageSet({ ...base(), labels: Int32Array.from([0]) })).toThrow('fixture: labels has 1 entries');
    expect(() => validateImageSet({ ...base(), labels: Int32Array.from([0, -1]) })).toThrow('fixture: label -1 of sample 1');
    expect(() => validateImageSet({ ...base(), numClasses: 0 })).toThrow('fixture: numClasses must be an integer >= 1');
    expect(() => validateImageSet({ ...base(), classNames: ['a'] })).toThrow('fixture: 1 class names for 3 classes');
  });
});
