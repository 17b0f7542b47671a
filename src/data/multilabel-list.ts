/**
 * Multi-label list files: one `relative/path.jpg<TAB>3,17,42` entry per line: the path relative to an
 * image root, a tab, and the image's labels as comma-separated non-negative integers (at least one,
 * no repeats). Blank lines are skipped.
 */
import { checkRelativePath } from './list-file.js';

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
