// Ranks of a c10d test as child processes running test/helpers/dist-worker.mjs against the compiled
// dist/ (test/global-setup.ts builds it).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const WORKER = fileURLToPath(new URL('./dist-worker.mjs', import.meta.url));
const DIST = fileURLToPath(new URL('../../dist/index.js', import.meta.url));

export { freePort } from '../../src/distributed/launcher.js';

export interface RankResult { code: number | null; signal: NodeJS.Signals | null; out: any; stderr: string }

/** Runs one rank; resolves with its exit and its JSON line. */
export function rank(o: Record<string, unknown>): Promise<RankResult> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [WORKER, DIST, JSON.stringify(o)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('exit', (code, signal) => {
      let out: unknown = null;
      try {
        out = JSON.parse(stdout.trim().split('\n').pop() ?? '');
      } catch {
        out = null;
      }
      resolve({ code, signal, out, stderr });
    });
  });
}

