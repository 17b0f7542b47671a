/**
 * The shared-CPU section: btm-node training (resnet20, batch 32, 28x28x1) alone, beside a busy
 * 2-thread PyTorch training loop, and beside a second btm-node process doing the same, each as a ratio
 * of its speed alone; for the default thread policy (adaptive: the cores, minus those other processes
 * keep busy) and for a fixed count of every core (BTM_NUM_THREADS = cores: what btm-node did before).
 * The PyTorch loop's own speed beside btm-node is reported against its speed alone too.
 */
import { spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { PYTHON, ROOT } from './common.js';

const WORKER = fileURLToPath(new URL('./shared-cpu-worker.js', import.meta.url));
const TORCH = `${ROOT}/bench/shared_cpu_torch.py`;

interface Run { imagesPerSec: number; threads?: number[]; adaptive?: boolean; runs?: number[] }

function proc(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '', err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!)) : reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}: ${err.slice(-800)}`))));
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface SharedCpuPolicy {
  policy: string;
  alone: Run;
  besideTorch: Run;
  torchBeside: Run;
  besideNode: Run;
}

export interface SharedCpuResult {
  cores: number;
  torchAlone: Run;
  policies: SharedCpuPolicy[];
}

export async function sharedCpuBench(opts: { quick: boolean; log: (s: string) => void }): Promise<SharedCpuResult> {
  const secs = opts.quick ? 4 : 8;
  const cores = availableParallelism();
  const base = { ...process.env };
  delete base.BTM_NUM_THREADS;
  delete base.BTM_ADAPTIVE_THREADS;
  const node = (env: NodeJS.ProcessEnv, s = secs) => proc(process.execPath, [WORKER, String(s)], env);
  // the neighbour runs through the whole measured window: its warm-up (2 s), the worker's start-up and
  // warm-up (about 3 s), and the window
  const neighbourSecs = secs + 6;
  opts.log(`shared-cpu: PyTorch loop alone (${secs} s)`);
  const torchAlone = await proc(PYTHON, [TORCH, String(secs + 2), '2'], base);
  const policies: SharedCpuPolicy[] = [];
  for (const [policy, env] of [
    ['adaptive (default)', base],
    [`fixed ${cores} threads (BTM_NUM_THREADS=${cores})`, { ...base, BTM_NUM_THREADS: String(cores) }],
  ] as const) {
    // alone before, between and after the shared runs (this machine's speed drifts): the median
    const aloneRuns: Run[] = [];
    opts.log(`shared-cpu: ${policy}: alone (1 of 3)`);
    aloneRuns.push(await node(env));
    opts.log(`shared-cpu: ${policy}: beside a 2-thread PyTorch training loop`);
    const torchP = proc(PYTHON, [TORCH, String(neighbourSecs), '2'], base);
    await sleep(1000);
    const besideTorch = await node(env);
    const torchBeside = await torchP;
    opts.log(`shared-cpu: ${policy}: alone (2 of 3)`);
    aloneRuns.push(await node(env));
    opts.log(`shared-cpu: ${policy}: beside a second btm-node process (same policy)`);
    const other = node(env, neighbourSecs - 2);
    await sleep(1000);
    const besideNode = await node(env);
    await other;
    opts.log(`shared-cpu: ${policy}: alone (3 of 3)`);
    aloneRuns.push(await node(env));
    const alone = [...aloneRuns].sort((a, b) => a.imagesPerSec - b.imagesPerSec)[1];
    alone.runs = aloneRuns.map((r) => r.imagesPerSec);
    policies.push({ policy, alone, besideTorch, torchBeside, besideNode });
  }
  return { cores, torchAlone, policies };
}
