import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { generateKanji, KANJI_FILES, loadGlyphs, loadKanjiDataset, pickClasses, writeKanjiDataset } from '../../src/data/kanji.js';
import { loadIdxDataset } from '../../src/data/idx.js';

const small = { numClasses: 12, trainPerClass: 5, testPerClass: 3, size: 28 };
const hash = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const dir = mkdtempSync(join(tmpdir(), 'kanji-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('kanji generator', () => {
  it('reads the real kanjidraw stroke data', () => {
    const glyphs = loadGlyphs();
    expect(glyphs.length).toBeGreaterThan(6000);
    for (const g of glyphs.slice(0, 50)) {
      for (const s of g.strokes) for (const v of s) expect(v >= 0 && v <= 1.05).toBe(true);
    }
  });

  it('is bit-for-bit reproducible from its seed, and another seed gives other images', () => {
    const a = generateKanji({ ...small, seed: 7 });
    const b = generateKanji({ ...small, seed: 7 });
    const c = generateKanji({ ...small, seed: 8 });
    expect(hash(a.train.images)).toBe(hash(b.train.images));
    expect(hash(a.test.images)).toBe(hash(b.test.images));
    expect(Array.from(a.train.labels)).toEqual(Array.from(b.train.labels));
    expect(hash(a.train.images)).not.toBe(hash(c.train.images));
  });

  it('varies the samples of a class and keeps train and test images apart', () => {
    const s = generateKanji({ ...small, seed: 1 });
    const plane = 28 * 28;
    const img = (set: typeof s.train, i: number) => set.images.subarray(i * plane, (i + 1) * plane);
    // samples 0 and K have the same class
    expect(s.train.labels[0]).toBe(s.train.labels[12]);
    expect(hash(img(s.train, 0))).not.toBe(hash(img(s.train, 12)));
    expect(hash(img(s.train, 0))).not.toBe(hash(img(s.test, 0)));
    // there is ink: a glyph is drawn, not noise alone
    const bright = img(s.train, 0).filter((v) => v > 200).length;
    expect(bright).toBeGreaterThan(20);
    expect(bright).toBeLessThan(plane / 2);
  });

  it('balances the test set and the training set over the classes', () => {
    const s = generateKanji({ ...small, seed: 2 });
    const count = (l: Int32Array) => Array.from({ length: 12 }, (_, c) => l.filter((v) => v === c).length);
    expect(count(s.test.labels)).toEqual(new Array(12).fill(3));
    expect(count(s.train.labels)).toEqual(new Array(12).fill(5));
    expect(s.train.classNames).toHaveLength(12);
    expect(new Set(s.train.classNames).size).toBe(12);
  });

  it('chooses distinct kanji within the stroke range, depending on the seed', () => {
    const glyphs = loadGlyphs();
    const a = pickClasses(glyphs, 50, 4, 14, 0);
    expect(new Set(a.map((g) => g.char)).size).toBe(50);
    for (const g of a) expect(g.strokes.length >= 4 && g.strokes.length <= 14).toBe(true);
    expect(pickClasses(glyphs, 50, 4, 14, 1).map((g) => g.char)).not.toEqual(a.map((g) => g.char));
  });

  it('refuses bad arguments with a clear error', () => {
    expect(() => generateKanji({ numClasses: 1 })).toThrow(/numClasses must be an integer in \[2, 6394\], got 1/);
    expect(() => generateKanji({ size: 4.5 })).toThrow(/size must be an integer/);
    expect(() => generateKanji({ minStrokes: 5, maxStrokes: 3 })).toThrow(/maxStrokes must be an integer in \[5, 64\], got 3/);
    expect(() => generateKanji({ numClasses: 5000, minStrokes: 20, maxStrokes: 21 })).toThrow(/exceeds the \d+ kanji with 20-21 strokes/);
    expect(() => generateKanji({ classes: 3 } as never)).toThrow(/unknown option 'classes'/);
    expect(() => generateKanji({ dataFile: join(dir, 'missing.json') })).toThrow(/missing\.json: kanji stroke data not found.*python3-kanjidraw/);
    expect(() => generateKanji({ dataFile: dir })).toThrow(/is a directory/);
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"3": {"x": [[1, 2, 3]]}}');
    expect(() => generateKanji({ dataFile: bad })).toThrow(/bad\.json: kanji "x".*arrays of 4 numbers/);
    writeFileSync(bad, '[1, 2');
    expect(() => generateKanji({ dataFile: bad })).toThrow(/bad\.json: not valid JSON/);
  });

  it('writes MNIST-layout IDX files that the IDX reader loads back, with a class list', () => {
    const out = join(dir, 'set');
    const s = writeKanjiDataset(out, { ...small, seed: 3 });
    const train = loadIdxDataset({ imagesPath: join(out, KANJI_FILES.trainImages), labelsPath: join(out, KANJI_FILES.trainLabels), numClasses: 12 });
    expect(hash(train.images)).toBe(hash(s.train.images));
    expect(Array.from(train.labels)).toEqual(Array.from(s.train.labels));
    const lines = readFileSync(join(out, KANJI_FILES.classes), 'utf8').trim().split('\n');
    expect(lines).toHaveLength(12);
    expect(lines[0]).toMatch(/^0\t\S\tU\+[0-9A-F]+\t\d+$/);
    expect(JSON.parse(readFileSync(join(out, KANJI_FILES.info), 'utf8'))).toMatchObject({ version: 1, options: { seed: 3, numClasses: 12 } });
    expect(() => writeKanjiDataset(join(out, KANJI_FILES.classes), small)).toThrow(/exists and is not a directory/);
  });

  it('keeps a generated set in its directory and reads it back, int32 labels beyond 256 classes', () => {
    const out = join(dir, 'cache');
    const opts = { numClasses: 300, trainPerClass: 1, testPerClass: 1, size: 12, seed: 4 };
    const made = loadKanjiDataset(out, opts);
    const labelFile = readFileSync(join(out, KANJI_FILES.trainLabels));
    const again = loadKanjiDataset(out, opts);
    expect(readFileSync(join(out, KANJI_FILES.trainLabels))).toEqual(labelFile); // read, not rewritten
    expect(hash(again.train.images)).toBe(hash(made.train.images));
    expect(Array.from(again.train.labels)).toEqual(Array.from(made.train.labels));
    expect(Math.max(...again.train.labels)).toBe(299);
    expect(again.train.classNames).toEqual(made.train.classNames);
    expect(() => loadKanjiDataset(out, { ...opts, seed: 5 })).toThrow(/holds a kanji set made with other options/);
  });
});
