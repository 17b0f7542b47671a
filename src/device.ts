/** Devices and threads: thin wrappers over libtorch's. */
import { availableParallelism } from 'node:os';
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

/**
 * Fixes libtorch's intra-op thread count for all CPU work in this process. By default (no call, no
 * BTM_NUM_THREADS) the count is adaptive: the machine's cores, lowered before each CPU job by the cores
 * other processes keep busy (Linux; see the README's "Threads and sharing the CPU").
 */
export function setNumThreads(n: number): void {
  native().setNumThreads(n);
}

/** The default policy again: up to `most` threads (default: the cores), fewer while other processes keep cores busy. */
export function setAdaptiveThreads(most: number = availableParallelism()): void {
  native().setNumThreads(most, true);
}

/** Whether the thread count adapts to other processes' load (see setNumThreads). */
export function threadsAdaptive(): boolean {
  return native().threadsAdaptive();
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

/** The intra-op thread count the next CPU job runs with. */
export function getNumThreads(): number {
  return native().getNumThreads();
}

/** Which libtorch the addon was built against and how it runs in parallel. */
export function buildInfo() {
  return native().buildInfo();
}
