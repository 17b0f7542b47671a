/**
 * List files in the ImageNet-LT / Places-LT / iNaturalist split format: one `relative/path.jpg label`
 * entry per line, the path relative to an image root and the label a non-negative integer. Images are
 * decoded and resized with the `sharp` package, which is imported only when images are loaded.
 */
import { availableParallelism } from 'node:os';
import { join, posix, win32 } from 'node:path';
import { arg, is } from '../args.js';
import { readUserText } from '../user-file.js';
import { type ImageSet, validateImageSet } from './image-set.js';

/** The entries of a list file, in file order. */
export interface ListEntries {
  /** Image paths relative to the image root, as written in the file. */
  paths: string[];
  labels: Int32Array;
  /** The 1-based line number of each entry (blank lines are skipped), for error messages. */
  lines: number[];
}

const MAX_LABEL = 2 ** 31 - 1;

/**
 * Parses the text of a list file. The label is the last whitespace-separated field of a line and the
 * path everything before it; blank lines are skipped. Throws an Error naming `source` and the line on
 * a missing, non-integer, negative or too large label, or an empty, absolute or root-escaping path.
 */
export function parseListFile(text: string, source: string): ListEntries {
  const paths: string[] = [];
  const labels: number[] = [];
  const lines: number[] = [];
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.trimEnd();
    if (line.trim() === '') continue;
    const fail = (problem: string): never => {
      throw new Error(`${source}:${index + 1}: ${problem}: '${line}'`);
    };
    const split = /^(.*?)\s+(\S+)$/.exec(line);
    if (!split) return fail('missing label (expected "<path> <label>")');
    const [, path, field] = split;
    if (/^-\d+$/.test(field)) fail(`negative label ${field}`);
    if (!/^\d+$/.test(field)) fail(`label '${field}' is not an integer`);
    const label = Number(field);
    if (label > MAX_LABEL) fail(`label ${field} is larger than ${MAX_LABEL}`);
    checkRelativePath(path, fail);
    paths.push(path);
    labels.push(label);
    lines.push(index + 1);
  }
  return { paths, labels: Int32Array.from(labels), lines };
}

/** Rejects a path that is empty, absolute (POSIX or Windows) or leaves the root through `..`. */
export function checkRelativePath(path: string, fail: (problem: string) => never): void {
  if (path === '') fail('empty path');
  if (posix.isAbsolute(path) || win32.isAbsolute(path)) fail(`absolute path '${path}'`);
  const normal = posix.normalize(path.replaceAll('\\', '/'));
  if (normal === '.' || normal === './') fail(`empty path '${path}'`);
  if (normal === '..' || normal.startsWith('../')) fail(`path '${path}' escapes the image root`);
}

/** How the images of a list file are decoded (shared by single- and multi-label list files). */
export interface ListImageOptions {
  /** The list file, one `relative/path label` entry per line. */
  listPath: string;
  /** The folder the paths in the list are relative to. */
  root: string;
  /** Side of the square output images, e.g. 32 or 224. */
  size: number;
  /** 3: sRGB planes R, G, B; 1: libvips greyscale (linear-light luminance, sRGB-encoded). */
  channels: 1 | 3;
  /**
   * 'cover' (default): scale the shorter side to `size`, then crop the centre square.
   * 'fill': stretch the whole image to size x size, ignoring its aspect ratio.
   */
  resize?: 'cover' | 'fill';
  /** Images decoded at once (default os.availableParallelism()). */
  concurrency?: number;
  /** Called after each decoded image with the number done so far and the total. */
  onProgress?: (done: number, total: number) => void;
}

export interface ListDatasetOptions extends ListImageOptions {
  /** Default: the largest label + 1. */
  numClasses?: number;
}

/**
 * Loads every image of a list file into an NCHW uint8 image set (source: `listPath`). A missing or
 * undecodable image rejects with an Error naming the list file, the line and the image path.
 */
export async function loadListDataset(options: ListDatasetOptions): Promise<ImageSet> {
  checkListImageOptions('loadListDataset', options);
  const { listPath, size, channels } = options;
  const { paths, labels, lines } = parseListFile(readUserText(listPath, 'list file'), listPath);
  const n = paths.length;
  const maxLabel = labels.reduce((max, label) => Math.max(max, label), -1);
  const numClasses = options.numClasses ?? maxLabel + 1;
  if (n === 0 && options.numClasses === undefined) throw new Error(`${listPath}: no entries, cannot infer numClasses`);
  const outside = labels.findIndex((label) => label >= numClasses);
  if (outside >= 0) {
    throw new Error(`${listPath}:${lines[outside]}: label ${labels[outside]} is outside [0, ${numClasses})`);
  }
  const images = await decodeListImages(options, paths, lines);
  return validateImageSet({ images, labels, n, channels, height: size, width: size, numClasses, source: listPath });
}

/** Checks the options of a list-file reader `where` (size, channels, resize, concurrency), naming the list file. */
export function checkListImageOptions(where: string, options: ListImageOptions): void {
  arg(where, 'options', options, is.object({ listPath: is.path(), root: is.string() }, { extra: true }));
  const { listPath, size, channels, resize = 'cover', concurrency = availableParallelism() } = options;
  if (!Number.isSafeInteger(size) || size < 1) throw new Error(`${listPath}: size must be an integer >= 1, got ${size}`);
  if (channels !== 1 && channels !== 3) throw new Error(`${listPath}: channels must be 1 or 3, got ${channels}`);
  if (resize !== 'cover' && resize !== 'fill') throw new Error(`${listPath}: resize must be 'cover' or 'fill', got '${resize}'`);
  if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
    throw new Error(`${listPath}: concurrency must be an integer >= 1, got ${concurrency}`);
  }
}

/**
 * Decodes the images `paths` (relative to options.root; `lines` their line numbers in the list file)
 * with sharp into n * channels * size * size uint8 pixels, NCHW. A missing or undecodable image rejects
 * with an Error naming the list file, the line and the image path.
 */
export async function decodeListImages(options: ListImageOptions, paths: readonly string[], lines: readonly number[]): Promise<Uint8Array> {
  const { listPath, root, size, channels, resize = 'cover', onProgress } = options;
  const concurrency = options.concurrency ?? availableParallelism();
  const n = paths.length;
  const sharp = await importSharp();
  const plane = size * size;
  const images = new Uint8Array(n * channels * plane);

  const decode = async (i: number): Promise<void> => {
    const file = join(root, paths[i]);
    let pipeline = sharp(file).resize(size, size, { fit: resize }).removeAlpha();
    pipeline = pipeline.toColourspace(channels === 1 ? 'b-w' : 'srgb');
    const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true }).catch((err: Error) => {
      throw new Error(`${listPath}:${lines[i]}: cannot load image '${file}': ${err.message}`);
    });
    if (info.width !== size || info.height !== size || info.channels !== channels || data.length !== channels * plane) {
      throw new Error(
        `${listPath}:${lines[i]}: image '${file}' decoded to ${info.width}x${info.height}x${info.channels}, ` +
          `expected ${size}x${size}x${channels}`,
      );
    }
    // HWC interleaved -> CHW planes.
    const out = images.subarray(i * channels * plane, (i + 1) * channels * plane);
    if (channels === 1) out.set(data);
    else for (let p = 0; p < plane; p++) for (let c = 0; c < 3; c++) out[c * plane + p] = data[p * 3 + c];
  };

  // A fixed pool of workers pulling the next index; the first failure stops further work.
  let next = 0;
  let done = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < n) {
      const i = next++;
      try {
        await decode(i);
      } catch (err) {
        failed = true;
        throw err;
      }
      onProgress?.(++done, n);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return images;
}

/** Imports `sharp` on first use, with an install hint when it is missing or cannot load. */
async function importSharp(): Promise<typeof import('sharp')> {
  try {
    return (await import('sharp')).default;
  } catch (err) {
    throw new Error(`loading images from list files needs the 'sharp' package (npm install sharp): ${(err as Error).message}`);
  }
}
