import { spawnSync } from 'node:child_process';
/**
 * The Python with torch + torchvision that the interop tests run: Debian's /usr/bin/python3 (python3-torch,
 * python3-torchvision) unless BTM_PYTHON names another (a CUDA box's PyTorch, scripts/gpu/run.sh).
 */
export const PYTHON = process.env.BTM_PYTHON || '/usr/bin/python3';

/** Why the torchvision interop tests cannot run here (PYTHON lacks torch or torchvision), or undefined. */
export function torchvisionUnavailable(): string | undefined {
  const r = spawnSync(PYTHON, ['-c', 'import torch, torchvision'], { encoding: 'utf8', timeout: 60_000 });
  if (r.error) return `${PYTHON} not runnable: ${r.error.message}`;
  if (r.status !== 0) return `${PYTHON} -c "import torch, torchvision" failed (exit ${r.status}): ${(r.stderr || '').trim().split('\n').pop()}`;
  return undefined;
}
