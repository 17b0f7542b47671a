import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadListDataset, parseListFile } from '../../src/data/list-file.js';

let root: string;
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'btm-list-'));
  mkdirSync(join(root, 'img/sub'), { recursive: true });
  const solid = (width: number, height: number, r: number, g: number, b: number) =>
    sharp({ create: { width, height, channels: 3, background: { r, g, b } } });
  await solid(40, 20, 255, 0, 0).png().toFile(join(root, 'img/red.png'));
  await solid(16, 16, 0, 0, 255).jpeg({ quality: 100 }).toFile(join(root, 'img/sub/blue.jpg'));
  // 40x10 RGBA: columns 0..9 black, 10..29 white, 30..39 black; the alpha channel must be dropped.
  const bands = new Uint8Array(40 * 10 * 4);
  for (let p = 0; p < 400; p++) bands.fill(p % 40 >= 10 && p % 40 < 30 ? 255 : 0, p * 4, p * 4 + 3).fill(255, p * 4 + 3, p * 4 + 4);
  await sharp(bands, { raw: { width: 40, height: 10, channels: 4 } }).png().toFile(join(root, 'img/bands.png'));
  writeFileSync(join(root, 'img/corrupt.jpg'), Uint8Array.from({ length: 256 }, (_, i) => (i * 97 + 13) & 255));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

/** Writes a list file under the temp root and returns its path. */
function list(name: string, text: string): string {
  const path = join(root, name);
  writeFileSync(path, text);
  return path;
}

/** Pixel (c, y, x) of image i in an NCHW set of 8x8 images. */
const at = (images: Uint8Array, channels: number, i: number, c: number, y: number, x: number) =>
  images[((i * channels + c) * 8 + y) * 8 + x];

describe('parseListFile', () => {
  it('reads path/label pairs, skipping blank lines and tolerating CRLF and tabs', () => {
    const parsed = parseListFile('a/x.jpg 3\r\n\n  \nb/with space.png\t0\r\nc.JPEG   12\n', 'list.txt');
    expect(parsed.paths).toEqual(['a/x.jpg', 'b/with space.png', 'c.JPEG']);
    expect(Array.from(parsed.labels)).toEqual([3, 0, 12]);
    expect(parsed.lines).toEqual([1, 4, 5]);
  });

  it.each([
    ['a.jpg 1\nb.jpg\n', 'list.txt:2: missing label'],
    ['a.jpg 1.5\n', "list.txt:1: label '1.5' is not an integer"],
    ['a.jpg cat\n', "list.txt:1: label 'cat' is not an integer"],
    ['\n\na.jpg -2\n', 'list.txt:3: negative label -2'],
    ['a.jpg 4294967296\n', 'list.txt:1: label 4294967296 is larger than'],
    [' 3\n', 'list.txt:1: empty path'],
    ['./ 3\n', 'list.txt:1: empty path'],
    ['/etc/x.jpg 3\n', "list.txt:1: absolute path '/etc/x.jpg'"],
    ['C:\\x.jpg 3\n', 'list.txt:1: absolute path'],
    ['ok.jpg 0\na/../../x.jpg 3\n', "list.txt:2: path 'a/../../x.jpg' escapes the image root"],
  ])('rejects %j', (text, message) => {
    expect(() => parseListFile(text, 'list.txt')).toThrow(message);
  });

  it('accepts .. that stays inside the root', () => {
    expect(parseListFile('a/../b.jpg 0\n', 'l').paths).toEqual(['a/../b.jpg']);
  });
});

describe('loadListDataset', () => {
  it('decodes RGB images into CHW planes with their labels', async () => {
    const listPath = list('rgb.txt', 'img/red.png 2\nimg/sub/blue.jpg 0\nimg/bands.png 1\n');
    const progress: number[] = [];
    const set = await loadListDataset({
      listPath, root, size: 8, channels: 3, concurrency: 2, onProgress: (done) => progress.push(done),
    });
    expect(set).toMatchObject({ n: 3, channels: 3, height: 8, width: 8, numClasses: 3, source: listPath });
    expect(set.images.length).toBe(3 * 3 * 8 * 8);
    expect(Array.from(set.labels)).toEqual([2, 0, 1]);
    expect(progress).toEqual([1, 2, 3]);
    for (const [y, x] of [[0, 0], [4, 5], [7, 7]]) {
      expect([0, 1, 2].map((c) => at(set.images, 3, 0, c, y, x))).toEqual([255, 0, 0]); // red
      const blue = [0, 1, 2].map((c) => at(set.images, 3, 1, c, y, x));
      expect(blue[0]).toBeLessThan(8);
      expect(blue[1]).toBeLessThan(8);
      expect(blue[2]).toBeGreaterThan(247);
    }
  });

  it("'cover' keeps the centre square of a non-square image, 'fill' stretches it", async () => {
    const listPath = list('bands.txt', 'img/bands.png 0\n');
    const row = (images: Uint8Array) => Array.from({ length: 8 }, (_, x) => at(images, 1, 0, 0, 4, x));
    // Cover: 40x10 -> 32x8, keep scaled columns 12..19 = source columns 15..24, inside the white band.
    const cover = await loadListDataset({ listPath, root, size: 8, channels: 1, numClasses: 5 });
    expect(cover).toMatchObject({ n: 1, channels: 1, height: 8, width: 8, numClasses: 5 });
    expect(row(cover.images).every((v) => v > 245)).toBe(true);
    // Fill: all 40 columns squeezed into 8, so both black bands show at the edges.
    const fill = await loadListDataset({ listPath, root, size: 8, channels: 1, resize: 'fill' });
    const fillRow = row(fill.images);
    expect([fillRow[0], fillRow[7]].every((v) => v < 40)).toBe(true);
    expect([fillRow[3], fillRow[4]].every((v) => v > 215)).toBe(true);
  });

  it('converts to greyscale when channels is 1', async () => {
    const listPath = list('grey.txt', 'img/red.png 0\n');
    const set = await loadListDataset({ listPath, root, size: 8, channels: 1 });
    expect(set.images.length).toBe(64);
    const grey = at(set.images, 1, 0, 0, 4, 4);
    // libvips greyscale is linear-light luminance re-encoded as sRGB: pure red gives ~127 (PIL's 'L' gives 76).
    expect(grey).toBeGreaterThan(110);
    expect(grey).toBeLessThan(145);
    expect(set.images.every((v) => v === grey)).toBe(true);
  });

  it('names the list file, line and path of a missing or corrupt image', async () => {
    const missing = list('missing.txt', 'img/red.png 0\n\nimg/nope.png 1\n');
    await expect(loadListDataset({ listPath: missing, root, size: 8, channels: 3 })).rejects.toThrow(
      new RegExp(`^${missing}:3: cannot load image '${join(root, 'img/nope.png')}': .*missing`),
    );
    const corrupt = list('corrupt.txt', 'img/corrupt.jpg 0\n');
    await expect(loadListDataset({ listPath: corrupt, root, size: 8, channels: 3 })).rejects.toThrow(
      `${corrupt}:1: cannot load image '${join(root, 'img/corrupt.jpg')}'`,
    );
  });

  it('rejects malformed lists, escaping paths and labels outside numClasses', async () => {
    const malformed = list('malformed.txt', 'img/red.png 0\nimg/red.png x\n');
    await expect(loadListDataset({ listPath: malformed, root, size: 8, channels: 3 })).rejects.toThrow(
      `${malformed}:2: label 'x' is not an integer`,
    );
    const escaping = list('escaping.txt', '../outside.png 0\n');
    await expect(loadListDataset({ listPath: escaping, root, size: 8, channels: 3 })).rejects.toThrow(
      `${escaping}:1: path '../outside.png' escapes the image root`,
    );
    const tooBig = list('toobig.txt', 'img/red.png 0\nimg/red.png 4\n');
    await expect(loadListDataset({ listPath: tooBig, root, size: 8, channels: 3, numClasses: 4 })).rejects.toThrow(
      `${tooBig}:2: label 4 is outside [0, 4)`,
    );
  });
});
