/** Devices and threads: thin wrappers over libtorch's. */
import { native } from './native.js';

/** 'cpu', 'cuda' (the current CUDA device) or 'cuda:N'. */
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

/** True when libtorch was built with CUDA and a GPU is visible. */
export function cudaAvailable(): boolean {
  return native().cudaAvailable();
}

/** Number of visible CUDA devices (0 without CUDA). */
export function deviceCount(): number {
  return native().deviceCount();
}

/** libtorch's intra-op thread count for all models in this process (defaults to the core count). */
export function setNumThreads(n: number): void {
  native().setNumThreads(n);
}

/**
 * Reproducible CUDA numerics for the whole process (PyTorch's torch.backends.cudnn.deterministic = true
 * with allow_tf32 = false): cuDNN's deterministic algorithms, exact fp32 convolutions, no autotuning.
 * Two runs of the same work then give the same bits, at some cost in speed; `false` restores libtorch's
 * defaults (TF32 convolutions allowed). Set it before training; it does not change CPU work.
 */
export function setCudaDeterministic(on: boolean): void {
  native().setCudaDeterministic(on);
}

export function getNumThreads(): number {
  return native().getNumThreads();
}

/** Which libtorch the addon was built against and how it runs in parallel. */
export function buildInfo() {
  return native().buildInfo();
}
