// The pipeline as a distributed run: a group of one equals a plain run bit for bit; 2 ranks on
// loopback fan BTM out and merge with one all-reduce; a rank killed mid-run stops the launcher's other
// ranks, and --resume finishes the run.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { readCheckpoint } from '../../src/checkpoint.js';
import { distBackends } from '../../src/distributed/process-group.js';
import { mergeFiles } from '../../src/merge.js';
import { runPipeline } from '../../src/pipeline/run.js';
import { deepMerge, presetConfig } from '../../src/presets.js';
import { freePort, rank } from '../helpers/dist.js';

const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'btm-dist-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function tiny(name: string, patch: object = {}) {
  return deepMerge(presetConfig('btm'), {
    name, runDir: root, seed: 3,
    data: { dataset: 'synthetic', imbalanceFactor: 10, synthetic: { numClasses: 4, size: 16, trainPerClass: 120, testPerClass: 30 } },
    model: { arch: 'resnet8' },
    pretrain: { epochs: 3, batchSize: 32, warmupEpochs: 0 },
    btm: { epochs: 2, numSubsets: 3, perClass: 8, batchSize: 8, evalEach: true },
    posttrain: { epochs: 2, batchSize: 32 },
    ...patch,
  });
}

describe.skipIf(!distBackends().includes('gloo'))('distributed pipeline (Gloo, loopback)', () => {
  it('a group of one rank gives the plain run bit for bit (the same code path with every collective)', async () => {
    const plain = await runPipeline(tiny('plain'));
    const one = await runPipeline(tiny('one'), { distributed: { rank: 0, worldSize: 1, port: await freePort() } });
    expect(one.status).toBe('complete');
    expect(one.rows.map((r) => r.step)).toEqual(plain.rows.map((r) => r.step));
    for (const [i, r] of one.rows.entries()) expect(r.perClassRecall, r.step).toEqual(plain.rows[i].perClassRecall);
    const a = (await readCheckpoint(join(plain.dir, 'posttrain.safetensors'))).state;
    const b = (await readCheckpoint(join(one.dir, 'posttrain.safetensors'))).state;
    expect(b.map((e) => Array.from(e.data as Float32Array))).toEqual(a.map((e) => Array.from(e.data as Float32Array)));
  }, 300_000);

  it('2 ranks: BTM members fanned out, merged by all-reduce equal to the merge of their checkpoints; rank 0 writes', async () => {
    const port = await freePort();
    const config = tiny('two');
    const [r0, r1] = await Promise.all([0, 1].map((r) => rank({ mode: 'pipeline', rank: r, worldSize: 2, port, config })));
    expect(r0.code, r0.stderr).toBe(0);
    expect(r1.code, r1.stderr).toBe(0);
    expect(r0.out.status).toBe('complete');
    // rank 0 evaluated every member (those of rank 1 from their checkpoints) and every stage
    expect(r0.out.rows.map((r: { step: string }) => r.step).sort()).toEqual(['btm-0', 'btm-1', 'btm-2', 'btm-merge', 'posttrain', 'pretrain']);
    const dir = r0.out.dir as string;
    const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
    expect(state.finished).toEqual(expect.arrayContaining(['pretrain', 'btm-0', 'btm-1', 'btm-2', 'btm-merge', 'posttrain']));
    // the merge: one all-reduce over the ranks' members = the streaming merge of all member checkpoints
    const files = [0, 1, 2].map((k) => join(dir, 'btm', `finetune-${k}.safetensors`));
    const want = await mergeFiles(files);
    const got = (await readCheckpoint(join(dir, 'btm', 'merged.safetensors'))).state;
    let worst = 0;
    for (const [i, e] of got.entries()) {
      expect(e.name).toBe(want[i].name);
      const w = want[i].data, g = e.data;
      for (let j = 0; j < g.length; j++) worst = Math.max(worst, Math.abs(Number(g[j]) - Number(w[j])));
    }
    expect(worst).toBeLessThan(1e-6); // float32 partial sums on the wire instead of one float64 sum
    // no partial checkpoint left behind
    expect(readdirSync(dir).filter((f) => f.includes('.partial.'))).toEqual([]);
  }, 300_000);

  it('2 ranks give the single-process metrics where no rank draws its own randomness: fc -> btm -> cRT-style post-train', async () => {
    // from a pre-trained model: fc (BatchNorm frozen) and the post-train (no shift-BN, no mixup) are
    // data-parallel with the same function per step as one process; BTM members train alone with the
    // single-process streams; the merge is an all-reduce. Only float summation order differs.
    const pre = await runPipeline(tiny('pre', { pipeline: ['pretrain'] }));
    const init = join(pre.dir, 'pretrain.safetensors');
    const patch = {
      pipeline: ['fc', 'btm', 'posttrain'], model: { arch: 'resnet8', init },
      fc: { epochs: 2, batchSize: 32 }, posttrain: { epochs: 2, batchSize: 32, shiftBn: false, mixupAlpha: 0 },
    };
    const single = await runPipeline(tiny('twin-1', patch));
    const port = await freePort();
    const config = tiny('twin-2', patch);
    const [r0, r1] = await Promise.all([0, 1].map((r) => rank({ mode: 'pipeline', rank: r, worldSize: 2, port, config })));
    expect(r0.code, r0.stderr).toBe(0);
    expect(r1.code, r1.stderr).toBe(0);
    const byStep = (rows: { step: string; perClassRecall: number[] }[]) => Object.fromEntries(rows.map((r) => [r.step, r.perClassRecall]));
    expect(byStep(r0.out.rows)).toEqual(byStep(single.rows));
    const a = (await readCheckpoint(join(single.dir, 'posttrain.safetensors'))).state;
    const b = (await readCheckpoint(join(r0.out.dir, 'posttrain.safetensors'))).state;
    let worst = 0;
    for (const [i, e] of b.entries()) {
      const scale = Math.max(1e-3, ...Array.from(a[i].data, (v) => Math.abs(Number(v))));
      for (let j = 0; j < e.data.length; j++) worst = Math.max(worst, Math.abs(Number(e.data[j]) - Number(a[i].data[j])) / scale);
    }
    expect(worst).toBeLessThan(1e-5);
  }, 300_000);

  it('btm run --nproc 2: a rank killed with SIGKILL stops the other, named; --resume finishes the run', async () => {
    const args = [CLI, 'run', '--nproc', '2', '--runDir', root, '--name', 'killed', '--seed', '3', '--data.dataset', 'synthetic',
      '--data.synthetic', '{"numClasses":4,"size":16,"trainPerClass":120,"testPerClass":30}', '--data.imbalanceFactor', '10',
      '--model.arch', 'resnet8', '--pretrain.epochs', '12', '--pretrain.batchSize', '32', '--pretrain.warmupEpochs', '0',
      '--btm.epochs', '1', '--btm.numSubsets', '2', '--btm.perClass', '8', '--btm.batchSize', '8', '--posttrain.epochs', '1', '--posttrain.batchSize', '32'];
    const launcher = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    launcher.stderr.on('data', (d) => (stderr += d));
    // once rank 0 has finished 2 epochs (a training state is written), kill rank 1
    const killedPid = await new Promise<number>((resolve, reject) => {
      const timer = setInterval(() => {
        if (!/pretrain epoch 2\/12/.test(stderr)) return;
        for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
          try {
            const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
            if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== launcher.pid) continue;
            if (!readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes('RANK=1')) continue;
            clearInterval(timer);
            process.kill(Number(pid), 'SIGKILL');
            resolve(Number(pid));
            return;
          } catch { /* a process that went away */ }
        }
      }, 100);
      launcher.on('exit', () => { clearInterval(timer); reject(new Error(`the launcher ended first: ${stderr}`)); });
    });
    const code = await new Promise<number | null>((resolve) => launcher.on('exit', (c) => resolve(c)));
    expect(killedPid).toBeGreaterThan(0);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/btm run --nproc: rank 1 was killed by SIGKILL; stopping the other ranks/);
    const dir = join(root, 'killed');
    const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
    expect(state.partial?.step).toBe('pretrain');
    // the training state on disk is whole (written atomically)
    await readCheckpoint(state.partial.file);
    const resumed = spawn(process.execPath, [...args, '--resume'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err2 = '';
    resumed.stdout.on('data', (d) => (out += d));
    resumed.stderr.on('data', (d) => (err2 += d));
    const code2 = await new Promise<number | null>((resolve) => resumed.on('exit', (c) => resolve(c)));
    expect(code2, err2).toBe(0);
    expect(err2).toMatch(/pretrain: resuming after epoch [2-9]/);
    expect(out).toMatch(/complete in/);
    expect(existsSync(join(dir, 'posttrain.safetensors'))).toBe(true);
  }, 600_000);
});
