/**
 * Reading a file the user named (a data file, a list or split file, a checkpoint): one place that
 * turns the file system's errors into messages naming the path and what was expected there
 * (`runs/x: is a directory, expected a checkpoint file`) instead of a bare `EISDIR`.
 */
import { readFileSync, statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { arg, is } from './args.js';

/** What the file system said, as a message that names `path` and the kind of file wanted. */
export function explainReadError(err: unknown, path: string, what: string): Error {
  const e = err as NodeJS.ErrnoException;
  const a = /^[aeiou]/i.test(what) ? 'an' : 'a';
  const message =
    e.code === 'EISDIR' ? `${path}: is a directory, expected ${a} ${what}`
      : e.code === 'ENOENT' ? `${path}: no such file (expected ${a} ${what})`
        : e.code === 'ENOTDIR' ? `${path}: a parent of this path is not a directory (expected ${a} ${what})`
          : e.code === 'EACCES' || e.code === 'EPERM' ? `${path}: permission denied reading the ${what}`
            : `${path}: cannot read the ${what}: ${e.message ?? String(err)}`;
  const out = new Error(message);
  (out as Error & { code?: string }).code = e.code;
  out.cause = err;
  return out;
}

function refuseNonFile(path: string, what: string, isFile: boolean, isDirectory: boolean): void {
  if (isDirectory) throw explainReadError(Object.assign(new Error('EISDIR'), { code: 'EISDIR' }), path, what);
  if (!isFile) throw new Error(`${path}: not a regular file (expected ${/^[aeiou]/i.test(what) ? 'an' : 'a'} ${what})`);
}

/**
 * The bytes of the user file `path`; `what` says what it should be ('checkpoint file', 'IDX file').
 * Refuses directories and special files (a FIFO would block) before reading.
 */
export function readUserFile(path: string, what: string): Buffer {
  arg('readUserFile', 'path', path, is.path());
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw explainReadError(e, path, what);
  }
  refuseNonFile(path, what, st.isFile(), st.isDirectory());
  try {
    return readFileSync(path);
  } catch (e) {
    throw explainReadError(e, path, what);
  }
}

/** {@link readUserFile}, without blocking the event loop. */
export async function readUserFileAsync(path: string, what: string): Promise<Buffer> {
  arg('readUserFile', 'path', path, is.path());
  let st;
  try {
    st = await stat(path);
  } catch (e) {
    throw explainReadError(e, path, what);
  }
  refuseNonFile(path, what, st.isFile(), st.isDirectory());
  try {
    return await readFile(path);
  } catch (e) {
    throw explainReadError(e, path, what);
  }
}

/** A user text file as UTF-8 (list files, split files, class names). */
export function readUserText(path: string, what: string): string {
  return readUserFile(path, what).toString('utf8');
}
