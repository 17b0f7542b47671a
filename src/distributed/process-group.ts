/**
 * A c10d process group (libtorch's torch.distributed engine, the layer under PyTorch DDP): Gloo for
 * CPU tensors, NCCL for CUDA ones where the addon was built with it. Every method is a collective:
 * all ranks call the same methods in the same order; each returns a Promise and runs on a native
 * executor thread, never on the JS thread. A rank that dies makes the others' pending call reject with
 * an error naming their rank (Gloo sees the closed connection at once; a hung rank is caught by
 * timeoutMs). Models join with model.setProcessGroup(group) for data-parallel training.
 */
import { native } from '../native.js';

export interface ProcessGroupOptions {
  rank: number;
  worldSize: number;
  /** 'gloo' (default on CPU) or 'nccl' (default on CUDA; needs a build with BTM_NCCL=1). */
  backend?: 'gloo' | 'nccl';
  /** Rendezvous: 'tcp' (default; rank 0 serves it at host:port) or 'file' (a file every rank sees, at path). */
  store?: 'tcp' | 'file';
  host?: string;
  port?: number;
  path?: string;
  /** How long the rendezvous and each collective wait for the other ranks (default 30 minutes). */
  timeoutMs?: number;
  /** This rank's device (NCCL: its CUDA device). */
  device?: string;
}

/** The native handle (internal). */
export interface NativeProcessGroup {
  allreduce(arrays: Float32Array[], options?: { scale?: number }): Promise<Float32Array[]>;
  barrier(): Promise<void>;
  broadcastModel(model: object, root?: number): Promise<void>;
  averageBuffers(model: object): Promise<void>;
  dispose(): void;
  readonly rank: number;
  readonly worldSize: number;
  readonly backend: string;
  readonly disposed: boolean;
}

const handles = new WeakMap<ProcessGroup, NativeProcessGroup>();

/** The native handle of a group, for Model.setProcessGroup and friends (internal). */
export function processGroupHandle(group: ProcessGroup, where: string): NativeProcessGroup {
  const h = group instanceof ProcessGroup ? handles.get(group) : undefined;
  if (!h) throw new TypeError(`${where}: group must be a ProcessGroup (from ProcessGroup.init)`);
  return h;
}

/** The backends this build of the addon can create. */
export function distBackends(): string[] {
  return (native() as unknown as { distBackends(): string[] }).distBackends();
}

export class ProcessGroup implements Disposable {
  private constructor(handle: NativeProcessGroup) {
    handles.set(this, handle);
  }

  /** Joins a group: resolves once all worldSize ranks have joined (or rejects after timeoutMs). */
  static async init(options: ProcessGroupOptions): Promise<ProcessGroup> {
    const addon = native() as unknown as { initProcessGroup(o: object): Promise<NativeProcessGroup> };
    return new ProcessGroup(await addon.initProcessGroup(options));
  }

  private get h(): NativeProcessGroup {
    return handles.get(this)!;
  }
  get rank(): number {
    return this.h.rank;
  }
  get worldSize(): number {
    return this.h.worldSize;
  }
  get backend(): string {
    return this.h.backend;
  }
  get disposed(): boolean {
    return this.h.disposed;
  }

  /** Elementwise sum over the ranks of scale * arrays[i] (new arrays; same lengths on every rank). */
  allreduce(arrays: Float32Array[], options: { scale?: number } = {}): Promise<Float32Array[]> {
    return this.h.allreduce(arrays, options);
  }

  /** Root's values on every rank (an allreduce where the other ranks send zeros). */
  async broadcastValues(values: Float32Array, root = 0): Promise<Float32Array> {
    const [out] = await this.allreduce([this.rank === root ? values : new Float32Array(values.length)]);
    return out;
  }

  /** Resolves when every rank has called it. */
  barrier(): Promise<void> {
    return this.h.barrier();
  }

  dispose(): void {
    this.h.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}
