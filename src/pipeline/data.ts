/** The data a run trains and evaluates on: the readers, the long-tailed split, the normalisation. */
import { isMultiLabelDataset, type Config } from '../config.js';
import { loadCifar } from '../data/cifar.js';
import { FASHION_MNIST_DIR, loadFashionMnist, loadIdxDataset } from '../data/idx.js';
import type { ImageSet } from '../data/image-set.js';
import { loadKanjiDataset } from '../data/kanji.js';
import { readUserText } from '../user-file.js';
import { loadListDataset } from '../data/list-file.js';
import { gridTask } from '../data/synthetic.js';
import { makeMosaicSet } from '../data/mosaic.js';
import { loadMultiLabelListDataset, multiHot, multiLabelCounts } from '../data/multilabel-list.js';
import { classCounts, longTailCounts, makeLongTailSplit, makeValidationSplit, parseSplitList } from '../sampling/longtail.js';
import { join } from 'node:path';

export interface RunData {
  /** The full training set (the split picks from it). */
  train: ImageSet;
  test: ImageSet;
  /** Long-tailed training indices into `train`. */
  split: Int32Array;
  /** Images per class in the split. */
  counts: number[];
  /** The validation split (data.valPerClass per class; empty when 0): indices into `train`, disjoint from `split`. */
  val: Int32Array;
  normalize: { mean: number[]; std: number[] } | undefined;
  /**
   * A multi-label run (dataset 'mosaic' or 'multilabel-list'): the label sets and multi-hot targets.
   * `train.labels` / `test.labels` then hold -1 (no single label: code that needs one fails loudly),
   * `split` is the whole training set (generated, or the training list) and `counts` the training
   * images containing each class.
   */
  multiLabel?: MultiLabelData;
}

export interface MultiLabelData {
  trainSets: number[][];
  testSets: number[][];
  /** [n * numClasses] multi-hot, row-major. */
  trainTargets: Uint8Array;
  testTargets: Uint8Array;
}

/**
 * The mosaic sets of dataset 'mosaic': Fashion-MNIST items (from data.dir or Debian's), a long-tailed
 * training set (data.imbalanceFactor) and a balanced test set, each from its own source split and seed.
 */
export function loadMosaicSets(d: Config['data']): { train: ImageSet; test: ImageSet; multiLabel: MultiLabelData } {
  const m = d.mosaic;
  const dir = d.dir ?? FASHION_MNIST_DIR;
  const make = (split: 'train' | 'test', n: number, imbalanceFactor: number, seed: number) => {
    const src = loadFashionMnist(split, dir);
    const set = makeMosaicSet(src, { n, imbalanceFactor, emptyProb: m.emptyProb, seed });
    const image: ImageSet = {
      images: set.images, labels: new Int32Array(set.n).fill(-1), n: set.n, channels: 1, height: set.height, width: set.width,
      numClasses: set.numClasses, classNames: src.classNames, source: set.source,
    };
    return { image, sets: set.labels, targets: multiHot(set.labels, set.numClasses) };
  };
  const train = make('train', m.trainSize, d.imbalanceFactor, m.seed * 2);
  const test = make('test', m.testSize, 1, m.seed * 2 + 1);
  return {
    train: train.image, test: test.image,
    multiLabel: { trainSets: train.sets, testSets: test.sets, trainTargets: train.targets, testTargets: test.targets },
  };
}

/**
 * The sets of dataset 'multilabel-list': data.trainList and data.testList (`path<TAB>3,17,42` lines)
 * under data.root, decoded with sharp to data.imageSize. The class count is data.numClasses when given,
 * else the training list's largest label + 1; a test label outside it is an error naming the test list
 * and the line.
 */
export async function loadMultiLabelListSets(d: Config['data']): Promise<{ train: ImageSet; test: ImageSet; multiLabel: MultiLabelData }> {
  const common = { root: d.root!, size: d.imageSize!, channels: d.channels ?? 3 };
  const train = await loadMultiLabelListDataset({ ...common, listPath: d.trainList!, numClasses: d.numClasses });
  const test = await loadMultiLabelListDataset({ ...common, listPath: d.testList!, numClasses: train.set.numClasses });
  const C = train.set.numClasses;
  return {
    train: train.set, test: test.set,
    multiLabel: { trainSets: train.labelSets, testSets: test.labelSets, trainTargets: multiHot(train.labelSets, C), testTargets: multiHot(test.labelSets, C) },
  };
}

/** The sets of a multi-label dataset ('mosaic' or 'multilabel-list'), for btm run, eval and split. */
export async function loadMultiLabelSets(d: Config['data']): Promise<{ train: ImageSet; test: ImageSet; multiLabel: MultiLabelData }> {
  if (d.dataset === 'mosaic') return loadMosaicSets(d);
  if (d.dataset === 'multilabel-list') return loadMultiLabelListSets(d);
  throw new Error(`dataset '${d.dataset}' is single-label (multi-label datasets: 'mosaic', 'multilabel-list')`);
}

/** Reads the configured single-label dataset (train and test sets). */
export async function loadImageSets(d: Config['data'], seed: number): Promise<{ train: ImageSet; test: ImageSet }> {
  switch (d.dataset) {
    case 'fashion-mnist':
      return { train: loadFashionMnist('train', d.dir ?? FASHION_MNIST_DIR), test: loadFashionMnist('test', d.dir ?? FASHION_MNIST_DIR) };
    case 'mnist-idx': {
      if (!d.dir) throw new Error("data.dir is required for dataset 'mnist-idx'");
      const dir = d.dir;
      const pair = (p: string) => loadIdxDataset({ imagesPath: join(dir, `${p}-images-idx3-ubyte.gz`), labelsPath: join(dir, `${p}-labels-idx1-ubyte.gz`) });
      return { train: pair('train'), test: pair('t10k') };
    }
    case 'cifar10':
    case 'cifar100': {
      if (!d.dir) throw new Error(`data.dir is required for dataset '${d.dataset}'`);
      return { train: loadCifar({ dir: d.dir, variant: d.dataset, split: 'train' }), test: loadCifar({ dir: d.dir, variant: d.dataset, split: 'test' }) };
    }
    case 'list': {
      const common = { root: d.root!, size: d.imageSize!, channels: d.channels ?? 3 };
      const train = await loadListDataset({ ...common, listPath: d.trainList!, numClasses: d.numClasses });
      const test = await loadListDataset({ ...common, listPath: d.testList!, numClasses: train.numClasses });
      return { train, test };
    }
    case 'kanji': {
      const { train, test } = loadKanjiDataset(d.dir, d.kanji);
      return { train, test };
    }
    case 'mosaic':
    case 'multilabel-list':
      // the callers here need one label per image; btm run / eval / split read label sets with loadMultiLabelSets
      throw new Error(`dataset '${d.dataset}' is multi-label: its images have label sets, not one label (read it with loadMultiLabelSets, not the single-label readers)`);
    case 'synthetic': {
      const s = d.synthetic;
      const task = (perClass: number, offset: number) => gridTask({ n: perClass * s.numClasses, numClasses: s.numClasses, size: s.size, seed: seed * 2 + offset });
      return { train: task(s.trainPerClass, 0), test: task(s.testPerClass, 1) };
    }
  }
}

/**
 * The long-tailed split (read from data.splitFile, or generated: exp/step profile, seeded) and the
 * validation split of data.valPerClass images per class (empty by default). Generated: the validation
 * images are drawn first and the long-tailed split from the rest (n_max defaults to the smallest class
 * left); with a split file, they are drawn from the images the file leaves out. Disjoint either way.
 */
export function longTailSplit(d: Config['data'], train: ImageSet): { split: Int32Array; counts: number[]; val: Int32Array } {
  const C = train.numClasses;
  const v = d.valPerClass;
  const carve = (pool?: ArrayLike<number>) => {
    try {
      return makeValidationSplit(train.labels, C, v, d.splitSeed, pool);
    } catch (e) {
      const m = /^class (\d+) has (\d+) images/.exec((e as Error).message);
      const name = m && train.classNames?.[Number(m[1])];
      throw new Error(m
        ? `data.valPerClass: ${v} validation images per class requested, but class ${m[1]}${name ? ` (${name})` : ''} has only ${m[2]}` +
          `${pool && d.splitFile ? ` training images outside ${d.splitFile}` : ' training images'}`
        : `data.valPerClass ${v}: ${(e as Error).message}`);
    }
  };
  if (d.splitFile) {
    const { indices } = parseSplitList(readUserText(d.splitFile, 'split file'), {
      source: d.splitFile,
      numClasses: C,
      datasetLabels: train.labels,
    });
    const inSplit = new Uint8Array(train.labels.length);
    for (const i of indices) inSplit[i] = 1;
    const val = v > 0 ? carve(Int32Array.from({ length: train.labels.length }, (_, i) => i).filter((i) => !inSplit[i])).val : new Int32Array(0);
    return { split: indices, counts: classCounts(train.labels, indices, C), val };
  }
  const { val, rest } = carve();
  const full = classCounts(train.labels, rest, C);
  const maxPerClass = d.maxPerClass ?? Math.min(...full);
  let counts: number[];
  try {
    counts = longTailCounts({ numClasses: C, maxPerClass, imbalanceFactor: d.imbalanceFactor, profile: d.profile });
  } catch (e) {
    if (v === 0) throw e;
    throw new Error(`data.valPerClass: ${v} validation images per class leave ${Math.min(...full)} in the smallest class: ${(e as Error).message}`);
  }
  const { indices } = makeLongTailSplit(train.labels, C, counts, d.splitSeed, v > 0 ? rest : undefined);
  return { split: indices, counts, val };
}

/** Per-channel mean and std (on the [0,1] scale) of the given images. */
export function channelStats(set: ImageSet, indices: ArrayLike<number>): { mean: number[]; std: number[] } {
  const { channels: C, height: H, width: W, images } = set;
  const plane = H * W;
  const sum = new Float64Array(C), sq = new Float64Array(C);
  for (let k = 0; k < indices.length; k++) {
    const base = indices[k] * C * plane;
    for (let c = 0; c < C; c++) {
      let s = 0, q = 0;
      const off = base + c * plane;
      for (let p = 0; p < plane; p++) {
        const v = images[off + p];
        s += v;
        q += v * v;
      }
      sum[c] += s;
      sq[c] += q;
    }
  }
  const count = indices.length * plane;
  const mean = Array.from(sum, (s) => s / count / 255);
  const std = Array.from(sq, (q, c) => Math.sqrt(Math.max(q / count / 65025 - mean[c] ** 2, 1e-12)));
  return { mean, std };
}

/**
 * The data of a run, checked before anything is written: both sets hold images of one shape and class
 * count, the split holds images, and the normalisation is finite with one value per channel. Errors
 * name the file or the config key.
 */
export async function loadRunData(cfg: Config): Promise<RunData> {
  if (isMultiLabelDataset(cfg.data.dataset)) return loadMultiLabelRunData(cfg);
  const { train, test } = await loadImageSets(cfg.data, cfg.seed);
  for (const set of [train, test]) {
    if (set.labels.length === 0) throw new Error(`${set.source}: holds no images`);
  }
  if (test.numClasses !== train.numClasses || test.channels !== train.channels || test.height !== train.height || test.width !== train.width) {
    throw new Error(`${test.source}: test set shape/classes differ from the training set ${train.source}`);
  }
  const { split, counts, val } = longTailSplit(cfg.data, train);
  return { train, test, split, counts, val, normalize: runNormalization(cfg, train, split) };
}

/**
 * A multi-label run's data: the mosaic sets or the list files, all their training images (no split),
 * counts of training images per class; every class must be in at least one training image.
 */
async function loadMultiLabelRunData(cfg: Config): Promise<RunData> {
  const d = cfg.data;
  if (d.splitFile) {
    throw new Error(`data.splitFile: dataset '${d.dataset}' is multi-label; its training set (${d.dataset === 'mosaic' ? 'generated long-tailed' : 'data.trainList'}) is used as a whole and takes no split file`);
  }
  const { train, test, multiLabel } = await loadMultiLabelSets(d);
  const split = Int32Array.from({ length: train.n }, (_, i) => i);
  const counts = multiLabelCounts(multiLabel.trainSets, train.numClasses);
  const missing = counts.flatMap((n, c) => (n === 0 ? [c] : []));
  if (missing.length) {
    const how = d.numClasses !== undefined ? `data.numClasses = ${d.numClasses}` : `${train.numClasses} classes`;
    throw new Error(`${train.source}: class${missing.length > 1 ? 'es' : ''} ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ', ...' : ''} ` +
      `in no training image (${how}): every class needs a positive for BTM's per-class subsets, the class-aware sampler and the loss priors`);
  }
  return { train, test, split, counts, val: new Int32Array(0), normalize: runNormalization(cfg, train, split), multiLabel };
}

function runNormalization(cfg: Config, train: ImageSet, split: Int32Array): RunData['normalize'] {
  if (split.length === 0) {
    throw new Error(`${cfg.data.splitFile ?? 'data.maxPerClass / data.imbalanceFactor'}: the long-tailed split holds no images`);
  }
  const n = cfg.data.normalize;
  const normalize = n === 'none' ? undefined : n === 'auto' ? channelStats(train, split) : n;
  if (normalize && (normalize.mean.length !== train.channels || normalize.std.length !== train.channels)) {
    throw new Error(`data.normalize: mean and std need ${train.channels} value(s), one per channel`);
  }
  if (normalize && ![...normalize.mean, ...normalize.std].every(Number.isFinite)) {
    throw new Error(`data.normalize: ${n === 'auto' ? `the statistics of the ${split.length} split images are not finite` : 'not finite'} ` +
      `(mean ${normalize.mean.join(', ')}, std ${normalize.std.join(', ')})`);
  }
  return normalize;
}
