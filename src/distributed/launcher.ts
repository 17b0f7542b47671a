/**
 * `btm run --nproc N`: starts N ranks of the same command on this machine with torchrun's variables
 * (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR=127.0.0.1, MASTER_PORT) and supervises them: rank 0's
 * output goes through, the others' stderr comes prefixed with their rank; when a rank fails (an exit
 * code or a signal), the launcher names it and stops the others (SIGTERM, then SIGKILL after a grace
 * period), so that no rank is left waiting on a dead peer.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { createServer } from 'node:net';

export interface LaunchOptions {
  nproc: number;
  /** The script and its arguments each rank runs (with node), --nproc removed. */
  argv: string[];
  /** Rendezvous port (default: a free one). */
  port?: number;
  /** OpenMP threads per rank (default: the cores divided among the ranks, at least 1). */
  threadsPerRank?: number;
  /** Seconds between SIGTERM and SIGKILL when stopping the others (default 10). */
  graceSeconds?: number;
  log?: (line: string) => void;
}

/** A TCP port free right now on the loopback interface. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** Runs the ranks; resolves with the launcher's exit code (0 when every rank exited 0). */
export async function launchLocal(o: LaunchOptions): Promise<number> {
  const log = o.log ?? ((line: string) => process.stderr.write(line + '\n'));
  const port = o.port ?? (await freePort());
  const threads = o.threadsPerRank ?? Math.max(1, Math.floor(availableParallelism() / o.nproc));
  log(`btm run --nproc ${o.nproc}: ${o.nproc} ranks on 127.0.0.1:${port}, ${threads} thread(s) each`);
  const children: ChildProcess[] = [];
  let failed: { rank: number; code: number } | undefined;
  const exits = Array.from({ length: o.nproc }, (_, rank) => new Promise<void>((resolve) => {
    const env = {
      ...process.env,
      RANK: String(rank), WORLD_SIZE: String(o.nproc), LOCAL_RANK: String(rank), LOCAL_WORLD_SIZE: String(o.nproc),
      MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port),
      BTM_NUM_THREADS: process.env.BTM_NUM_THREADS ?? String(threads),
    };
    const child = spawn(process.execPath, o.argv, { env, stdio: ['inherit', rank === 0 ? 'inherit' : 'ignore', rank === 0 ? 'inherit' : 'pipe'] });
    children[rank] = child;
    if (rank > 0) {
      let pending = '';
      child.stderr!.on('data', (d: Buffer) => {
        const lines = (pending + d.toString()).split('\n');
        pending = lines.pop() ?? '';
        for (const line of lines) log(`[rank ${rank}] ${line}`);
      });
      child.stderr!.on('end', () => pending && log(`[rank ${rank}] ${pending}`));
    }
    child.on('exit', (code, signal) => {
      if ((code !== 0 || signal) && !failed) {
        failed = { rank, code: code ?? 1 };
        log(`btm run --nproc: rank ${rank} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}; stopping the other ranks`);
        stopOthers(rank);
      }
      resolve();
    });
  }));
  const stopOthers = (except: number) => {
    for (const [r, c] of children.entries()) if (r !== except && c && c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
    const timer = setTimeout(() => {
      for (const c of children) if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    }, (o.graceSeconds ?? 10) * 1000);
    timer.unref();
  };
  // Ctrl-C reaches the ranks from the terminal; a SIGINT / SIGTERM sent to the launcher alone is passed on
  const forward = (sig: NodeJS.Signals) => () => {
    for (const c of children) if (c && c.exitCode === null) c.kill(sig);
  };
  const onInt = forward('SIGINT'), onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    await Promise.all(exits);
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
  return failed ? (failed.code === 0 ? 1 : failed.code) : 0;
}
