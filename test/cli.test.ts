// The btm command line, run as a user runs it (node dist/cli.js; dist is compiled by the global setup).
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { bytesOf } from './helpers/synthetic.js';
import { readSafetensors } from '../src/safetensors.js';

const cli = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'btm-cli-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function btm(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { timeout: 280_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

const tiny = [
  '--runDir', root, '--data.dataset', 'synthetic', '--data.imbalanceFactor', '10', '--model.arch', 'resnet8',
  '--data.synthetic.trainPerClass', '60', '--data.synthetic.testPerClass', '10',
  '--pretrain.epochs', '2', '--pretrain.batchSize', '32', '--btm.epochs', '2', '--btm.numSubsets', '2', '--btm.perClass', '5', '--btm.batchSize', '8',
  '--posttrain.epochs', '1', '--posttrain.batchSize', '32',
];

describe('btm CLI', () => {
  it('--help lists the commands; an unknown command fails with usage', async () => {
    const h = await btm('--help');
    expect(h.code).toBe(0);
    for (const c of ['run', 'eval', 'merge', 'split', 'info']) expect(h.stdout).toContain(`btm ${c}`);
    const r = await btm('run', '--help');
    expect(r.stdout).toMatch(/--preset.*\n?.*ce.*crt.*mislas.*btm/s);
    const bad = await btm('frobnicate');
    expect(bad.code).not.toBe(0);
  });

  it('a bad flag value or unknown key is an error naming the key (exit 2)', async () => {
    const r = await btm('run', '--pretrain.epochs', '-3', '--btm.colour', 'red', '--runDir', root);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/config\.pretrain\.epochs: Too small: expected number to be >=0/);
    expect(r.stderr).toMatch(/config\.btm: Unrecognized key: "colour"/);
  });

  it('run --json, then info, eval, merge and split on its checkpoints', async () => {
    const run = await btm('run', '--name', 'cli', '--json', ...tiny);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.status).toBe('complete');
    expect(result.rows.map((r: { step: string }) => r.step)).toEqual(['pretrain', 'btm-0', 'btm-1', 'btm-merge', 'posttrain']);

    const info = await btm('info', result.checkpoint);
    expect(info.code).toBe(0);
    expect(JSON.parse(info.stdout).meta).toMatchObject({ arch: 'resnet8', numClasses: 4, inChannels: 1, imageSize: 16 });

    const ev = await btm('eval', result.checkpoint, '--json', ...tiny.slice(2));
    expect(ev.code).toBe(0);
    expect(JSON.parse(ev.stdout).accuracy).toBeCloseTo(result.rows[result.rows.length - 1].accuracy, 10);

    const out = join(root, 'm.safetensors');
    const m = await btm('merge', join(result.dir, 'btm/finetune-0.safetensors'), join(result.dir, 'btm/finetune-1.safetensors'), '--out', out);
    expect(m.code).toBe(0);
    // the CLI merge of the two fine-tunes equals the run's own uniform merge, tensor by tensor
    const mine = (await readSafetensors(out)).dict, runs = (await readSafetensors(join(result.dir, 'btm/merged.safetensors'))).dict;
    expect(mine.map((e) => e.name)).toEqual(runs.map((e) => e.name));
    for (let i = 0; i < mine.length; i++) expect(bytesOf(mine[i].data).equals(bytesOf(runs[i].data)), mine[i].name).toBe(true);

    const sweep = await btm('interpolate', join(result.dir, 'pretrain.safetensors'), join(result.dir, 'btm/finetune-0.safetensors'), '--steps', '3', '--json', ...tiny.slice(2));
    expect(sweep.code).toBe(0);
    const points = JSON.parse(sweep.stdout);
    expect(points.map((p: { lambda: number }) => p.lambda)).toEqual([0, 0.5, 1]);
    expect(points[0].acc).toBeCloseTo(result.rows[0].accuracy, 10); // lambda 0 is the pre-trained model
    expect(points[2].acc).toBeCloseTo(result.rows[1].accuracy, 10); // lambda 1 is fine-tune #1

    const splitFile = join(root, 'split.txt');
    const s = await btm('split', '--out', splitFile, ...tiny.slice(2));
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/per class: 60 27 12 6/);
    expect(readFileSync(splitFile, 'utf8').trim().split('\n')).toHaveLength(1 + 60 + 27 + 12 + 6);
  });

  it('--resume continues a stopped run; without it an existing run is refused', async () => {
    const again = await btm('run', '--name', 'cli', ...tiny);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/already holds a run: pass --resume/);
    const resumed = await btm('run', '--name', 'cli', '--resume', '--quiet', ...tiny);
    expect(resumed.code).toBe(0);
    expect(resumed.stdout).toMatch(/complete in/);
  });

  it('Ctrl-C (SIGINT) stops after the current step with a resumable run; --resume finishes it', async () => {
    // the tiny run with 30 pre-training epochs instead of 2 (a repeated flag would become an array)
    const long = tiny.map((v, i) => (tiny[i - 1] === '--pretrain.epochs' ? '30' : v));
    const child = spawn(process.execPath, [cli, 'run', '--name', 'sigint', ...long], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const state = join(root, 'sigint', 'state.json');
    // wait until a pre-training epoch has been checkpointed, then interrupt
    for (let i = 0; i < 600; i++) {
      await new Promise((r) => setTimeout(r, 100));
      if (existsSync(state) && JSON.parse(readFileSync(state, 'utf8')).partial) break;
    }
    child.kill('SIGINT');
    const watchdog = setTimeout(() => child.kill('SIGKILL'), 200_000); // never leave a stray run behind
    const code = await exited;
    clearTimeout(watchdog);
    expect(code).toBe(130);
    expect(stderr).toMatch(/stopping after the current step/);
    expect(stderr).toMatch(/continue with --resume/);
    const partial = JSON.parse(readFileSync(state, 'utf8')).partial;
    expect(partial.step).toBe('pretrain');
    const resumed = await btm('run', '--name', 'sigint', '--resume', '--quiet', ...long);
    expect(resumed.code).toBe(0);
  }, 300_000);

  it('a config file is validated with its name in the message', async () => {
    const file = join(root, 'bad.json');
    writeFileSync(file, '{"pretrain": {"epochs": 1, "lr": "fast"}}');
    const r = await btm('run', '--config', file, '--runDir', root);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/config\.pretrain\.lr: Invalid input: expected number, received string/);
    writeFileSync(file, '{ not json');
    const r2 = await btm('run', '--config', file, '--runDir', root);
    expect(r2.stderr).toContain(file);
    expect(existsSync(join(root, 'btm-cpu'))).toBe(false);
  });
});
