/**
 * The in-memory image set every dataset reader produces, and the small byte-level helpers the
 * readers share (whole-file reading with gzip detection, label extraction with range checks).
 */
import { gunzipSync } from 'node:zlib';
import { readUserFile } from '../user-file.js';

/** A labelled image set held in memory: uint8 pixels in NCHW order and one int32 label per image. */
export interface ImageSet {
  /** n*channels*height*width pixels: image-major, then channel planes, then rows. */
  images: Uint8Array;
  /** n class indices, each in [0, numClasses). */
  labels: Int32Array;
  n: number;
  channels: number;
  height: number;
  width: number;
  numClasses: number;
  /** One name per class, when the dataset provides them. */
  classNames?: string[];
  /** Where the data came from (a file or directory); error messages start with it. */
  source: string;
}

/** Checks that `set` is self-consistent and returns it; throws an Error naming `set.source` and the problem. */
export function validateImageSet(set: ImageSet): ImageSet {
  const fail = (problem: string): never => {
    throw new Error(`${set.source}: ${problem}`);
  };
  for (const key of ['n', 'channels', 'height', 'width', 'numClasses'] as const) {
    const min = key === 'n' ? 0 : 1;
    if (!Number.isSafeInteger(set[key]) || set[key] < min) fail(`${key} must be an integer >= ${min}, got ${set[key]}`);
  }
  const { n, channels, height, width, numClasses } = set;
  const pixels = n * channels * height * width;
  if (set.images.length !== pixels) {
    fail(`images has ${set.images.length} bytes, expected ${pixels} (${n}x${channels}x${height}x${width})`);
  }
  if (set.labels.length !== n) fail(`labels has ${set.labels.length} entries, expected n = ${n}`);
  const bad = set.labels.findIndex((label) => label < 0 || label >= numClasses);
  if (bad >= 0) fail(`label ${set.labels[bad]} of sample ${bad} is outside [0, ${numClasses})`);
  if (set.classNames && set.classNames.length !== numClasses) {
    fail(`${set.classNames.length} class names for ${numClasses} classes`);
  }
  return set;
}

/**
 * Reads a whole data file, gunzipping it when it starts with the gzip magic 1f 8b.
 * `what` names the expected kind of file in errors (a directory or a missing file names the path).
 * Byte offsets in the readers' errors refer to the bytes returned here (the decompressed data).
 */
export function readDataFile(path: string, what = 'data file'): Uint8Array {
  const raw = readUserFile(path, what);
  if (raw.length < 2 || raw[0] !== 0x1f || raw[1] !== 0x8b) return raw;
  try {
    return gunzipSync(raw);
  } catch (err) {
    throw new Error(`${path}: cannot gunzip: ${(err as Error).message}`);
  }
}

/** Where labels sit in a byte buffer, for {@link readByteLabels}. */
export interface ByteLabelLayout {
  count: number;
  numClasses: number;
  /** Bytes from one label to the next (default 1). */
  stride?: number;
  /** File offset of `bytes[0]`, so errors report positions in the file (default 0). */
  fileOffset?: number;
  /** What the label is called in errors (default 'label'). */
  kind?: string;
}

/**
 * Copies `count` one-byte labels, label i being `bytes[i * stride]`, into an Int32Array.
 * Throws an Error naming `file`, the sample index and its byte offset when a label is >= numClasses.
 */
export function readByteLabels(file: string, bytes: Uint8Array, layout: ByteLabelLayout): Int32Array {
  const { count, numClasses, stride = 1, fileOffset = 0, kind = 'label' } = layout;
  const labels = new Int32Array(count);
  for (let i = 0; i < count; i++) {
    const label = bytes[i * stride];
    if (label >= numClasses) {
      throw new Error(
        `${file}: ${kind} ${label} of sample ${i} at offset ${fileOffset + i * stride} is outside [0, ${numClasses})`,
      );
    }
    labels[i] = label;
  }
  return labels;
}
