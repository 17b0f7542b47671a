/**
 * State-dict averaging of resnet50 checkpoints (torchvision layout, 1000 classes, ~102 MB each):
 * time and GB/s of mergeFiles against only reading the same files (readSafetensors), and peak RSS of
 * each, for several N_D. Each measurement runs in its own child process so its maxRSS is its own.
 * The files are freshly written, so both read from the page cache.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { mergeFiles } from '../src/merge.js';
import { readSafetensors, writeSafetensors } from '../src/safetensors.js';

type Op = 'read' | 'merge';
const fileName = (dir: string, k: number) => join(dir, `model-${k}.safetensors`);

/**
 * Peak resident memory of this process in bytes. Linux's VmHWM belongs to the address space, which
 * exec replaces; getrusage's maxRSS is carried over from the forking parent, so a child would report
 * the parent's peak.
 */
function peakRss(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.resourceUsage().maxRSS * 1024;
}

/** Child: read or merge the first `n` files of `dir`; prints seconds and peak RSS (bytes) as JSON. */
async function child(op: Op, dir: string, n: number): Promise<void> {
  const files = Array.from({ length: n }, (_, k) => fileName(dir, k));
  const startRss = peakRss();
  const t = performance.now();
  if (op === 'read') {
    for (const f of files) await readSafetensors(f);
  } else {
    await mergeFiles(files);
  }
  const seconds = (performance.now() - t) / 1000;
  process.stdout.write(JSON.stringify({ seconds, startRss, maxRss: peakRss() }));
}

function measure(op: Op, dir: string, n: number): { seconds: number; startRss: number; maxRss: number } {
  const out = execFileSync(process.execPath, [fileURLToPath(import.meta.url), op, dir, String(n)], { encoding: 'utf8' });
  return JSON.parse(out);
}

export async function mergeBench(opts: { counts: number[]; log: (s: string) => void }) {
  const { Model } = await import('../src/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'btm-bench-merge-'));
  try {
    const maxN = Math.max(...opts.counts);
    opts.log(`merge: writing ${maxN} resnet50 state dicts to ${dir}`);
    const model = new Model({ arch: 'resnet50', numClasses: 1000, seed: 0 });
    const state = model.stateDict();
    model.dispose();
    for (let k = 0; k < maxN; k++) {
      for (const e of state) if (e.data instanceof Float32Array) e.data[k % e.data.length] += 1e-3; // a distinct copy
      await writeSafetensors(fileName(dir, k), state);
    }
    const fileBytes = statSync(fileName(dir, 0)).size;
    const rows = [];
    for (const n of opts.counts) {
      opts.log(`merge: N_D = ${n}`);
      const read = measure('read', dir, n);
      const merge = measure('merge', dir, n);
      const gbps = (s: number) => (n * fileBytes) / s / 1e9;
      rows.push({ n, read: { ...read, gbps: gbps(read.seconds) }, merge: { ...merge, gbps: gbps(merge.seconds) } });
    }
    return { arch: 'resnet50', fileBytes, rows };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  await child(process.argv[2] as Op, process.argv[3], Number(process.argv[4]));
}
