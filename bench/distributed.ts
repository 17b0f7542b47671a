/**
 * The distributed section: data-parallel training with 1 and 2 ranks on this machine (one thread per
 * rank, ranks as processes on loopback Gloo), the gradient all-reduce's cost against the step, and the
 * BTM fan-out's wall time (2 ranks) against one process (a group of one, same code).
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from '../src/distributed/launcher.js';

const RANK = fileURLToPath(new URL('./distributed-rank.js', import.meta.url));

async function ranks(worldSize: number, o: object): Promise<Record<string, number>> {
  const port = await freePort();
  const outs = await Promise.all(Array.from({ length: worldSize }, (_, rank) => new Promise<string>((resolve, reject) => {
    const p = spawn(process.execPath, [RANK, JSON.stringify({ ...o, rank, worldSize, port })], {
      stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BTM_NUM_THREADS: '1' },
    });
    let out = '', err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`rank ${rank} exited with ${code}: ${err}`))));
  })));
  return JSON.parse(outs[0].trim());
}

export interface DistributedResult {
  label: string;
  dp: { ranks: number; syncBatchNorm: boolean; imagesPerSec: number; stepMs: number; allreduceMs: number; smallAllreduceMs: number; parameters: number }[];
  fanout: { ranks: number; seconds: number; mergeSeconds: number }[];
}

export async function distributedBench(opts: { quick: boolean; log: (s: string) => void }): Promise<DistributedResult> {
  const c = { arch: 'resnet20', size: 28, channels: 1, batch: 128, steps: opts.quick ? 6 : 20, warmup: 2, members: 4 };
  const dp = [];
  // 2 ranks with SyncBatchNorm (the default) and without: the difference is its all-reduces' cost
  for (const [w, sync] of [[1, true], [2, true], [2, false]] as const) {
    opts.log(`distributed: data-parallel ${c.arch} b${c.batch}, ${w} rank(s) x 1 thread${w > 1 ? `, SyncBatchNorm ${sync ? 'on' : 'off'}` : ''}`);
    dp.push({ ranks: w, syncBatchNorm: sync, ...(await ranks(w, { ...c, task: 'dp', syncBatchNorm: sync })) } as DistributedResult['dp'][number]);
  }
  const fanout = [];
  for (const w of [1, 2]) {
    opts.log(`distributed: BTM fan-out, ${c.members} members x ${c.steps} steps of b32, ${w} rank(s)`);
    fanout.push({ ranks: w, ...(await ranks(w, { ...c, batch: 32, task: 'fanout' })) } as DistributedResult['fanout'][number]);
  }
  return { label: `${c.arch} ${c.size}x${c.size}x${c.channels}, global batch ${c.batch}`, dp, fanout };
}
