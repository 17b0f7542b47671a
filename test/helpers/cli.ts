// The btm command line as users run it: node dist/cli.js (dist/ is compiled by test/global-setup.ts).
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface CliResult { code: number; stdout: string; stderr: string }

/**
 * A runner of `btm ARGS...` that gives up after `timeoutMs` (the exit code, or 1 when it was killed
 * or failed to start), with its whole stdout and stderr.
 */
export function cliRunner(timeoutMs: number): (...args: string[]) => Promise<CliResult> {
  return (...args) => runCli(args, timeoutMs);
}

/** One `btm ARGS...` run, as cliRunner's, with `env` added to this process's environment. */
export function runCli(args: string[], timeoutMs: number, env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: timeoutMs }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}
