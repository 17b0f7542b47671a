/**
 * Multi-label list files: one `relative/path.jpg<TAB>3,17,42` entry per line: the path relative to an
 * image root, a tab, and the image's labels as comma-separated non-negative integers (at least one,
 * no repeats). Blank lines are skipped. Images are decoded with sharp as for single-label list files.
 */
import { readUserText } from '../user-file.js';
import type { ImageSet } from './image-set.js';
import { checkListImageOptions, checkRelativePath, decodeListImages, type ListImageOptions } from './list-file.js';

export interface MultiLabelEntries {
  paths: string[];
  /** The label set of each entry, ascending. */
  labels: number[][];
  /** 1-based line number of each entry, for error messages. */
  lines: number[];
}

/**
 * Parses the text of a multi-label list file. Throws an Error naming `source` and the line on a
 * missing tab, an empty label set, a label that is not a non-negative integer, a repeated label, a
 * label >= numClasses (when given), or a bad path (empty, absolute, escaping the root).
 */
export function parseMultiLabelList(text: string, source: string, numClasses?: number): MultiLabelEntries {
  const paths: string[] = [], labels: number[][] = [], lines: number[] = [];
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '') continue;
    const fail = (problem: string): never => {
      throw new Error(`${source}:${index + 1}: ${problem}: '${line}'`);
    };
    const tab = line.lastIndexOf('\t');
    if (tab < 0) fail('missing tab (expected "<path><TAB><label>,<label>,...")');
    const path = line.slice(0, tab), field = line.slice(tab + 1).trim();
    if (field === '') fail('empty label set (every image needs at least one label)');
    const set: number[] = [];
    for (const part of field.split(',')) {
      const p = part.trim();
      if (p === '') fail(`empty label in '${field}'`);
      if (/^-\d+$/.test(p)) fail(`negative label ${p}`);
      if (!/^\d+$/.test(p)) fail(`label '${p}' is not an integer`);
      const label = Number(p);
      if (numClasses !== undefined && label >= numClasses) fail(`label ${label} out of range for ${numClasses} classes`);
      if (set.includes(label)) fail(`label ${label} appears twice`);
      set.push(label);
    }
    checkRelativePath(path, fail);
    paths.push(path);
    labels.push(set.sort((a, b) => a - b));
    lines.push(index + 1);
  }
  return { paths, labels, lines };
}

/** The most classes a multi-label list may imply without declaring numClasses (multi-hot targets take n * C bytes). */
export const MAX_INFERRED_CLASSES = 100_000;

export interface MultiLabelListOptions extends ListImageOptions {
  /** The class count; default: the largest label in the list + 1. A label >= numClasses is an error. */
  numClasses?: number;
}

/** The images of a multi-label list file and their label sets. */
export interface MultiLabelImageSet {
  /** The images (NCHW uint8, source: the list file); `labels` holds -1: an image has no single label. */
  set: ImageSet;
  /** The label set of each image, ascending. */
  labelSets: number[][];
  /** 1-based line number of each image in the list file. */
  lines: number[];
}

/**
 * Loads a multi-label list file (`path<TAB>3,17,42` lines, see parseMultiLabelList) and decodes its
 * images with sharp as loadListDataset does. Errors name the list file and the line: a bad line, an
 * empty label set, a label >= numClasses (declared, or inferred as the largest label + 1), a list with
 * no entry, a missing or undecodable image.
 */
export async function loadMultiLabelListDataset(options: MultiLabelListOptions): Promise<MultiLabelImageSet> {
  checkListImageOptions('loadMultiLabelListDataset', options);
  const { listPath, size, channels } = options;
  if (options.numClasses !== undefined && (!Number.isSafeInteger(options.numClasses) || options.numClasses < 1)) {
    throw new Error(`${listPath}: numClasses must be an integer >= 1, got ${options.numClasses}`);
  }
  const { paths, labels, lines } = parseMultiLabelList(readUserText(listPath, 'list file'), listPath, options.numClasses);
  if (paths.length === 0) throw new Error(`${listPath}: no entries (expected "<path><TAB><label>,<label>,..." lines)`);
  // the entry holding the largest label (label sets are sorted: their last label)
  let top = 0;
  for (let i = 1; i < labels.length; i++) if (labels[i][labels[i].length - 1] > labels[top][labels[top].length - 1]) top = i;
  const largest = labels[top][labels[top].length - 1];
  if (options.numClasses === undefined && largest >= MAX_INFERRED_CLASSES) {
    throw new Error(`${listPath}:${lines[top]}: label ${largest} would make ${largest + 1} classes (more than ${MAX_INFERRED_CLASSES}); ` +
      'fix the label or declare the class count (data.numClasses)');
  }
  const numClasses = options.numClasses ?? largest + 1;
  const images = await decodeListImages(options, paths, lines);
  const n = paths.length;
  return {
    set: { images, labels: new Int32Array(n).fill(-1), n, channels, height: size, width: size, numClasses, source: listPath },
    labelSets: labels,
    lines,
  };
}

/** Multi-hot targets [n * numClasses] (row-major) from label sets. */
export function multiHot(labels: readonly (readonly number[])[], numClasses: number): Uint8Array {
  const out = new Uint8Array(labels.length * numClasses);
  labels.forEach((set, i) => {
    for (const c of set) {
      if (!Number.isInteger(c) || c < 0 || c >= numClasses) throw new RangeError(`labels[${i}] holds ${c}, out of range for ${numClasses} classes`);
      out[i * numClasses + c] = 1;
    }
  });
  return out;
}

/** Number of images containing each class (a class counts once per image). */
export function multiLabelCounts(labels: readonly (readonly number[])[], numClasses: number): number[] {
  const counts = new Array<number>(numClasses).fill(0);
  for (const set of labels) for (const c of set) counts[c]++;
  return counts;
}
