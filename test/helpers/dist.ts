// Ranks of a c10d test as child processes running test/helpers/dist-worker.mjs against the compiled
// dist/ (test/global-setup.ts builds it).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { distBackends } from '../../src/distributed/process-group.js';
import { freePort } from '../../src/distributed/launcher.js';

const WORKER = fileURLToPath(new URL('./dist-worker.mjs', import.meta.url));
const DIST = fileURLToPath(new URL('../../dist/index.js', import.meta.url));

export { freePort };

/** Whether the addon has Gloo (the loopback tests skip without it). */
export const gloo = distBackends().includes('gloo');

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

/**
 * Runs ranks 0 .. worldSize - 1 of one group with the worker settings `o` (mode and the rest), on
 * o.port or a free loopback port; resolves with their results in rank order.
 */
export async function ranks(worldSize: number, o: Record<string, unknown>): Promise<RankResult[]> {
  const port = o.port ?? (await freePort());
  return Promise.all(Array.from({ length: worldSize }, (_, r) => rank({ ...o, rank: r, worldSize, port })));
}

/** Every process exited with code 0 (the failing one's stderr as the message). */
export function expectExitedCleanly(...results: RankResult[]): void {
  for (const r of results) expect(r.code, r.stderr).toBe(0);
}
