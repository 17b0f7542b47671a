/**
 * A many-class image set drawn from real kanji stroke data, for long-tailed experiments with hundreds
 * of classes on a CPU (the BTM paper's regime: Places-LT 365, ImageNet-LT 1000 classes).
 *
 * Source: the `data.json` of Debian's `python3-kanjidraw` (6394 kanji, each a list of strokes given as
 * straight segments [x1, y1, x2, y2] on a ~256-unit canvas, grouped by stroke count). These are glyph
 * skeletons, not natural images: every sample is one class's skeleton redrawn with per-sample
 * variation so that recognising it is a learning problem:
 *   - stroke endpoint jitter and a random bend per stroke (a quadratic curve drawn as segments),
 *   - a random affine map (rotation, scale, aspect, shear, translation),
 *   - a smooth elastic warp (two random sinusoid fields),
 *   - random stroke width and ink contrast, and additive Gaussian pixel noise.
 * Everything is drawn from the project's seeded Rng with one stream per (split, sample), so a set is
 * bit-for-bit reproducible from its seed and options, and sample i does not depend on sample j.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { writeFileAtomicSync } from '../atomic-file.js';
import { assertInteger, Rng } from '../sampling/rng.js';
import { loadIdxDataset } from './idx.js';
import { type ImageSet, validateImageSet } from './image-set.js';

/** Where Debian's python3-kanjidraw installs its stroke data. */
export const KANJIDRAW_DATA = '/usr/lib/python3/dist-packages/kanjidraw/data.json';

/** Bumped whenever the drawing changes, so a generated set records which generator made it. */
export const KANJI_GENERATOR_VERSION = 1;

export interface KanjiOptions {
  /** Number of classes K (distinct kanji), default 300. */
  numClasses?: number;
  /** Training images per class (balanced; the long-tailed split is taken from them), default 300. */
  trainPerClass?: number;
  /** Test images per class (balanced), default 30. */
  testPerClass?: number;
  /** Side of the square grayscale images, default 32. */
  size?: number;
  /** Seed of the class choice and of every sample, default 0. */
  seed?: number;
  /** Only kanji with this many strokes or more / or fewer (simple glyphs are too alike), default 4 and 14. */
  minStrokes?: number;
  maxStrokes?: number;
  /** The kanjidraw data.json (default: Debian's). */
  dataFile?: string;
}

/** One kanji: its character and strokes scaled to [0, 1]. */
export interface Glyph {
  char: string;
  strokes: [number, number, number, number][];
}

const DEFAULTS = { numClasses: 300, trainPerClass: 300, testPerClass: 30, size: 32, seed: 0, minStrokes: 4, maxStrokes: 14 };
const CANVAS = 256;

/** Reads and checks kanjidraw's data.json: { "<strokes>": { "<kanji>": [[x1, y1, x2, y2], ...] } }. */
export function loadGlyphs(file: string = KANJIDRAW_DATA): Glyph[] {
  if (!existsSync(file)) {
    throw new Error(
      `${file}: kanji stroke data not found. Install it with \`apt-get install --no-install-recommends python3-kanjidraw\` ` +
        'or pass the path of kanjidraw\'s data.json',
    );
  }
  if (statSync(file).isDirectory()) throw new Error(`${file}: is a directory, expected kanjidraw's data.json`);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`${file}: expected an object keyed by stroke count`);
  const glyphs: Glyph[] = [];
  for (const [count, group] of Object.entries(raw as Record<string, unknown>)) {
    if (!group || typeof group !== 'object' || Array.isArray(group)) throw new Error(`${file}: entry "${count}" is not an object of kanji`);
    for (const [char, strokes] of Object.entries(group as Record<string, unknown>)) {
      const bad = () => new Error(`${file}: kanji "${char}" (group "${count}"): strokes must be arrays of 4 numbers`);
      if (!Array.isArray(strokes) || strokes.length === 0) throw bad();
      const scaled = strokes.map((s) => {
        if (!Array.isArray(s) || s.length !== 4 || !s.every((v) => typeof v === 'number' && Number.isFinite(v))) throw bad();
        return s.map((v: number) => v / CANVAS) as [number, number, number, number];
      });
      glyphs.push({ char, strokes: scaled });
    }
  }
  // A fixed order independent of the JSON's key order: by stroke count, then code point.
  glyphs.sort((a, b) => a.strokes.length - b.strokes.length || (a.char < b.char ? -1 : a.char > b.char ? 1 : 0));
  return glyphs;
}

/** K distinct kanji with a stroke count in [minStrokes, maxStrokes], chosen by the seed, in code point order. */
export function pickClasses(glyphs: Glyph[], k: number, minStrokes: number, maxStrokes: number, seed: number): Glyph[] {
  const eligible = glyphs.filter((g) => g.strokes.length >= minStrokes && g.strokes.length <= maxStrokes);
  if (k > eligible.length) {
    throw new RangeError(
      `numClasses ${k} exceeds the ${eligible.length} kanji with ${minStrokes}-${maxStrokes} strokes; widen minStrokes/maxStrokes or ask for fewer classes`,
    );
  }
  const order = new Rng(seed, [0x6b616e6a]).permutation(eligible.length);
  const chosen = Array.from(order.subarray(0, k), (i) => eligible[i]);
  return chosen.sort((a, b) => (a.char < b.char ? -1 : a.char > b.char ? 1 : 0));
}

/** A standard normal draw (Box-Muller on two uniforms in (0, 1]). */
function normal(rng: Rng): number {
  const u = 1 - rng.nextFloat();
  const v = rng.nextFloat();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

const uniform = (rng: Rng, lo: number, hi: number) => lo + (hi - lo) * rng.nextFloat();

/** Squared distance from (px, py) to the segment (ax, ay)-(bx, by). */
function segmentDist2(px: number, py: number, ax: number, ay: number, bx: number, by: number): number {
  const dx = bx - ax, dy = by - ay;
  const len2 = dx * dx + dy * dy;
  let t = len2 > 0 ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0;
  t = t < 0 ? 0 : t > 1 ? 1 : t;
  const ex = ax + t * dx - px, ey = ay + t * dy - py;
  return ex * ex + ey * ey;
}

const BEND_SEGMENTS = 4;

/**
 * Draws one sample of `glyph` into out[offset .. offset + size*size) (uint8, ink bright on dark),
 * with all variation drawn from `rng`.
 */
export function drawGlyph(glyph: Glyph, size: number, rng: Rng, out: Uint8Array, offset = 0): void {
  // The affine map from glyph space [0,1]^2 (centred) to pixels.
  const angle = uniform(rng, -0.2, 0.2);
  const scale = uniform(rng, 0.8, 1.02) * size;
  const aspect = uniform(rng, 0.9, 1.1);
  const shear = uniform(rng, -0.2, 0.2);
  const tx = uniform(rng, -0.06, 0.06) * size + size / 2;
  const ty = uniform(rng, -0.06, 0.06) * size + size / 2;
  const cos = Math.cos(angle), sin = Math.sin(angle);
  const sx = scale * aspect, sy = scale / aspect;
  const map = (x: number, y: number): [number, number] => {
    const u = (x - 0.5) * sx + shear * (y - 0.5) * sy;
    const v = (y - 0.5) * sy;
    return [cos * u - sin * v + tx, sin * u + cos * v + ty];
  };
  // Strokes: jittered endpoints, bent by a perpendicular offset of the midpoint, as short segments.
  const segs: number[] = [];
  for (const [x1, y1, x2, y2] of glyph.strokes) {
    const ax = x1 + 0.02 * normal(rng), ay = y1 + 0.02 * normal(rng);
    const bx = x2 + 0.02 * normal(rng), by = y2 + 0.02 * normal(rng);
    const len = Math.hypot(bx - ax, by - ay) || 1;
    const bend = 0.12 * len * normal(rng);
    const cx = (ax + bx) / 2 - ((by - ay) / len) * bend, cy = (ay + by) / 2 + ((bx - ax) / len) * bend;
    let [px, py] = map(ax, ay);
    for (let s = 1; s <= BEND_SEGMENTS; s++) {
      const t = s / BEND_SEGMENTS, w0 = (1 - t) * (1 - t), w1 = 2 * t * (1 - t), w2 = t * t;
      const [qx, qy] = map(w0 * ax + w1 * cx + w2 * bx, w0 * ay + w1 * cy + w2 * by);
      segs.push(px, py, qx, qy);
      px = qx;
      py = qy;
    }
  }
  // Elastic warp of the sampling grid: two sinusoid fields with random frequency and phase.
  const amp = uniform(rng, 0, 0.035) * size;
  const fx = uniform(rng, 0.5, 1.5) / size, fy = uniform(rng, 0.5, 1.5) / size;
  const phx = uniform(rng, 0, 2 * Math.PI), phy = uniform(rng, 0, 2 * Math.PI);
  const half = (uniform(rng, 0.045, 0.085) * size) / 2;
  const ink = uniform(rng, 0.7, 1.0);
  const noise = uniform(rng, 0.02, 0.08);
  // Warped pixel centres, then each segment updates only the pixels near its bounding box (the warp
  // moves a centre by at most `amp`, and ink reaches `half + 0.5` pixels from the stroke).
  const plane = size * size;
  const wx = new Float64Array(plane), wy = new Float64Array(plane), best = new Float64Array(plane).fill(Infinity);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      wx[y * size + x] = x + 0.5 + amp * Math.sin(2 * Math.PI * fy * (y + 0.5) + phx);
      wy[y * size + x] = y + 0.5 + amp * Math.sin(2 * Math.PI * fx * (x + 0.5) + phy);
    }
  }
  const reach = half + 1 + amp;
  for (let k = 0; k < segs.length; k += 4) {
    const ax = segs[k], ay = segs[k + 1], bx = segs[k + 2], by = segs[k + 3];
    const x0 = Math.max(0, Math.floor(Math.min(ax, bx) - reach)), x1 = Math.min(size - 1, Math.ceil(Math.max(ax, bx) + reach));
    const y0 = Math.max(0, Math.floor(Math.min(ay, by) - reach)), y1 = Math.min(size - 1, Math.ceil(Math.max(ay, by) + reach));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const p = y * size + x;
        const d = segmentDist2(wx[p], wy[p], ax, ay, bx, by);
        if (d < best[p]) best[p] = d;
      }
    }
  }
  for (let p = 0; p < plane; p++) {
    const cover = Math.min(1, Math.max(0, half + 0.5 - Math.sqrt(best[p])));
    const value = cover * ink + noise * normal(rng);
    out[offset + p] = Math.round(Math.min(1, Math.max(0, value)) * 255);
  }
}

function checkOptions(o: KanjiOptions): Required<Omit<KanjiOptions, 'dataFile'>> & { dataFile: string } {
  const known = new Set([...Object.keys(DEFAULTS), 'dataFile']);
  for (const k of Object.keys(o)) if (!known.has(k)) throw new TypeError(`kanji: unknown option '${k}' (known: ${[...known].join(', ')})`);
  const r = { ...DEFAULTS, dataFile: KANJIDRAW_DATA, ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) };
  assertInteger('kanji: numClasses', r.numClasses, 2, 6394);
  assertInteger('kanji: trainPerClass', r.trainPerClass, 1, 100_000);
  assertInteger('kanji: testPerClass', r.testPerClass, 1, 100_000);
  assertInteger('kanji: size', r.size, 8, 256);
  assertInteger('kanji: seed', r.seed, 0, 2 ** 53);
  assertInteger('kanji: minStrokes', r.minStrokes, 1, 64);
  assertInteger('kanji: maxStrokes', r.maxStrokes, r.minStrokes, 64);
  if (typeof r.dataFile !== 'string') throw new TypeError(`kanji: dataFile must be a path string, got ${typeof r.dataFile}`);
  return r;
}

export interface KanjiSet {
  train: ImageSet;
  test: ImageSet;
  classes: Glyph[];
}

/** Generates the balanced train and test sets (labels interleaved: sample i has class i mod K). */
export function generateKanji(options: KanjiOptions = {}): KanjiSet {
  const o = checkOptions(options);
  const classes = pickClasses(loadGlyphs(o.dataFile), o.numClasses, o.minStrokes, o.maxStrokes, o.seed);
  const make = (split: 'train' | 'test', perClass: number): ImageSet => {
    const n = perClass * o.numClasses;
    const plane = o.size * o.size;
    const images = new Uint8Array(n * plane);
    const labels = new Int32Array(n);
    const stream = new Rng(o.seed, [split === 'train' ? 1 : 2]);
    for (let i = 0; i < n; i++) {
      labels[i] = i % o.numClasses;
      drawGlyph(classes[labels[i]], o.size, stream.fork(i), images, i * plane);
    }
    return validateImageSet({
      images, labels, n, channels: 1, height: o.size, width: o.size, numClasses: o.numClasses,
      classNames: classes.map((g) => g.char), source: `kanji(seed ${o.seed}, ${split})`,
    });
  };
  return { train: make('train', o.trainPerClass), test: make('test', o.testPerClass), classes };
}

/** An IDX file: unsigned bytes (type 0x08), or big-endian int32 (type 0x0C) for `Int32Array` data. */
export function idxBytes(dims: number[], data: Uint8Array | Int32Array): Buffer {
  const int32 = data instanceof Int32Array;
  const header = Buffer.alloc(4 + 4 * dims.length);
  header.writeUInt32BE((int32 ? 0xc00 : 0x800) + dims.length, 0);
  dims.forEach((d, i) => header.writeUInt32BE(d, 4 + 4 * i));
  if (!int32) return Buffer.concat([header, data]);
  const body = Buffer.alloc(data.length * 4);
  data.forEach((v, i) => body.writeInt32BE(v, i * 4));
  return Buffer.concat([header, body]);
}

/** File names written by writeKanjiDataset (the IDX names that dataset 'mnist-idx' reads). */
export const KANJI_FILES = {
  trainImages: 'train-images-idx3-ubyte.gz',
  trainLabels: 'train-labels-idx1-ubyte.gz',
  testImages: 't10k-images-idx3-ubyte.gz',
  testLabels: 't10k-labels-idx1-ubyte.gz',
  classes: 'classes.txt',
  info: 'kanji.json',
} as const;

function infoRecord(o: ReturnType<typeof checkOptions>) {
  const { dataFile, ...options } = o;
  return { generator: 'btm-node kanji', version: KANJI_GENERATOR_VERSION, source: dataFile, options };
}

/** Where a generated set is kept when no directory is given: $XDG_CACHE_HOME or ~/.cache, by options. */
export function defaultKanjiDir(options: KanjiOptions = {}): string {
  const o = checkOptions(options);
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'btm-node', `kanji-v${KANJI_GENERATOR_VERSION}-${o.numClasses}c-${o.trainPerClass}x${o.testPerClass}-${o.size}px-${o.minStrokes}to${o.maxStrokes}-s${o.seed}`);
}

/**
 * The train and test sets of a generated kanji set kept in `dir`: read when `dir` holds a set made by
 * this generator version with the same options (its kanji.json says so), else generated and written
 * there first. Either way the images are the same bytes.
 */
export function loadKanjiDataset(dir: string | undefined, options: KanjiOptions = {}): { train: ImageSet; test: ImageSet; dir: string } {
  const o = checkOptions(options);
  const where = dir ?? defaultKanjiDir(o);
  const infoFile = join(where, KANJI_FILES.info);
  let cached = false;
  if (existsSync(infoFile)) {
    let info: unknown;
    try {
      info = JSON.parse(readFileSync(infoFile, 'utf8'));
    } catch (e) {
      throw new Error(`${infoFile}: not valid JSON (${(e as Error).message}); remove ${where} to generate the set again`);
    }
    const want = infoRecord(o);
    const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
    const got = info as ReturnType<typeof infoRecord>;
    if (!same(got?.version, want.version) || !same(got?.options, want.options)) {
      throw new Error(
        `${where} holds a kanji set made with other options (${JSON.stringify(got?.options)}, generator version ${got?.version}); ` +
          `asked for ${JSON.stringify(want.options)} (version ${want.version}): use another directory or remove it`,
      );
    }
    cached = true;
  }
  if (!cached) {
    const made = writeKanjiDataset(where, o);
    return { train: made.train, test: made.test, dir: where };
  }
  const classNames = readFileSync(join(where, KANJI_FILES.classes), 'utf8').trim().split('\n').map((line) => line.split('\t')[1]);
  const read = (images: string, labels: string) =>
    loadIdxDataset({ imagesPath: join(where, images), labelsPath: join(where, labels), numClasses: o.numClasses, classNames });
  return { train: read(KANJI_FILES.trainImages, KANJI_FILES.trainLabels), test: read(KANJI_FILES.testImages, KANJI_FILES.testLabels), dir: where };
}

/**
 * Generates the set and writes it to `dir` as gzipped IDX files (the layout of MNIST), a class list
 * (`classes.txt`: one line per class, `index<TAB>kanji<TAB>U+code<TAB>strokes`) and `kanji.json`
 * (generator version and options). Every file is written atomically.
 */
export function writeKanjiDataset(dir: string, options: KanjiOptions = {}): KanjiSet & { files: string[] } {
  if (typeof dir !== 'string' || dir === '') throw new TypeError('kanji: the output directory must be a non-empty path');
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new Error(`${dir}: exists and is not a directory`);
  const o = checkOptions(options);
  const set = generateKanji(o);
  mkdirSync(dir, { recursive: true });
  const write = (name: string, bytes: Buffer | string) => {
    const file = join(dir, name);
    writeFileAtomicSync(file, bytes);
    return file;
  };
  // Labels are bytes when they fit (the MNIST layout), else int32 IDX (type 0x0C).
  const labels = (l: Int32Array) => (o.numClasses <= 256 ? Uint8Array.from(l) : l);
  const files = [
    write(KANJI_FILES.trainImages, gzipSync(idxBytes([set.train.n, o.size, o.size], set.train.images))),
    write(KANJI_FILES.trainLabels, gzipSync(idxBytes([set.train.n], labels(set.train.labels)))),
    write(KANJI_FILES.testImages, gzipSync(idxBytes([set.test.n, o.size, o.size], set.test.images))),
    write(KANJI_FILES.testLabels, gzipSync(idxBytes([set.test.n], labels(set.test.labels)))),
    write(
      KANJI_FILES.classes,
      set.classes.map((g, i) => `${i}\t${g.char}\tU+${g.char.codePointAt(0)!.toString(16).toUpperCase()}\t${g.strokes.length}\n`).join(''),
    ),
    // written last: its presence says the set is complete
    write(KANJI_FILES.info, JSON.stringify(infoRecord(o), null, 2) + '\n'),
  ];
  return { ...set, files };
}
