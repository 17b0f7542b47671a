/**
 * Paths the user names that are not readable files: every reader (checkpoints, safetensors, IDX,
 * CIFAR, list files) goes through src/user-file.ts, so a directory, a missing file or a special
 * file gets a message naming the path and what was expected, never a bare EISDIR / ENOENT.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkpointSummary, readCheckpoint } from '../src/checkpoint.js';
import { loadModel } from '../src/classifier.js';
import { readCifarBatch } from '../src/data/cifar.js';
import { loadIdxDataset, readIdx } from '../src/data/idx.js';
import { loadListDataset } from '../src/data/list-file.js';
import { readSafetensors, readSafetensorsSync } from '../src/safetensors.js';
import { readUserFile, readUserFileAsync, readUserText } from '../src/user-file.js';

let dir: string;
let sub: string;
let missing: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'btm-user-file-'));
  sub = path.join(dir, 'a-directory');
  fs.mkdirSync(sub);
  missing = path.join(dir, 'no-such-file');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** Every reader, given `p` where a file is expected. */
const an = (what: string) => `${/^[aeiou]/i.test(what) ? 'an' : 'a'} ${what}`;
const readers: [string, (p: string) => unknown, string][] = [
  ['loadModel', (p) => loadModel(p), 'safetensors file'],
  ['readCheckpoint', (p) => readCheckpoint(p), 'safetensors file'],
  ['checkpointSummary', (p) => checkpointSummary(p), 'safetensors file'],
  ['readSafetensors', (p) => readSafetensors(p), 'safetensors file'],
  ['readSafetensorsSync', (p) => readSafetensorsSync(p), 'safetensors file'],
  ['readIdx', (p) => readIdx(p), 'IDX file'],
  ['loadIdxDataset (images)', (p) => loadIdxDataset({ imagesPath: p, labelsPath: p }), 'IDX file'],
  ['readCifarBatch', (p) => readCifarBatch(p, 'cifar10'), 'cifar10 batch file'],
  ['loadListDataset', (p) => loadListDataset({ listPath: p, root: dir, size: 8, channels: 3 }), 'list file'],
];

async function messageOf(call: () => unknown): Promise<string> {
  try {
    await call();
  } catch (e) {
    return (e as Error).message;
  }
  return '(no error)';
}

describe('a directory where a file is expected', () => {
  it.each(readers)('%s names the path and says it is a directory', async (_name, read, what) => {
    expect(await messageOf(() => read(sub))).toBe(`${sub}: is a directory, expected ${an(what)}`);
  });
});

describe('a missing file', () => {
  it.each(readers)('%s names the path', async (_name, read, what) => {
    expect(await messageOf(() => read(missing))).toBe(`${missing}: no such file (expected ${an(what)})`);
  });

  it('a path through a regular file', async () => {
    const file = path.join(dir, 'plain');
    fs.writeFileSync(file, 'x');
    expect(await messageOf(() => readUserFile(path.join(file, 'child'), 'split file'))).toMatch(/: a parent of this path is not a directory \(expected a split file\)$/);
  });
});

describe('the shared reader', () => {
  it('reads files (sync, async, text)', async () => {
    const file = path.join(dir, 'ok.txt');
    fs.writeFileSync(file, 'héllo');
    expect(readUserFile(file, 'x').toString()).toBe('héllo');
    expect((await readUserFileAsync(file, 'x')).toString()).toBe('héllo');
    expect(readUserText(file, 'x')).toBe('héllo');
  });

  it('refuses a FIFO instead of blocking on it', async () => {
    const fifo = path.join(dir, 'fifo');
    try {
      execFileSync('mkfifo', [fifo]);
    } catch {
      return; // no mkfifo here: nothing to test
    }
    expect(await messageOf(() => readUserFileAsync(fifo, 'checkpoint file'))).toBe(`${fifo}: not a regular file (expected a checkpoint file)`);
    expect(await messageOf(() => readUserFile(fifo, 'IDX file'))).toBe(`${fifo}: not a regular file (expected an IDX file)`);
  });

  it.skipIf(process.getuid?.() === 0)('an unreadable file: permission denied, with the path', async () => {
    const file = path.join(dir, 'secret');
    fs.writeFileSync(file, 'x');
    fs.chmodSync(file, 0);
    expect(await messageOf(() => readUserFile(file, 'list file'))).toBe(`${file}: permission denied reading the list file`);
  });
});
