/**
 * Members trained together: N models of one architecture whose training chunks and test-set
 * evaluation run in ONE native call each. Every member is an ordinary Model (its own weights,
 * BatchNorm statistics, SGD state and random stream; stateDict / optimizerState / manualSeed as
 * usual), trained by the same native code a lone Model runs, so a member ends where the same model
 * trained alone would (to float tolerance). On a CPU the members run side by side, one per intra-op
 * thread, which is faster than one after another at the small batches of a BTM stage.
 */
import { Dataset } from './dataset.js';
import { Model, type ModelOptions, type Normalization, type TrainOptions, type TrainResult } from './model.js';
import { native, type NativeDataset, type NativeModel } from './native.js';
import type { StateDict } from './state-dict.js';

export interface MemberTrainOptions extends Omit<TrainOptions, 'lr'> {
  /** One learning rate for every member and step, or one entry per member (a number or one per step). */
  lr: number | Array<number | Float32Array | number[]>;
  /**
   * Train the members as ONE network whose convolutions run grouped over the members (ResNets): true,
   * false, or 'auto' (default: stacked on CUDA, where a small step is launch-bound, and side by side on
   * the CPU cores otherwise). true on members that cannot run stacked (PEFT modules, MORE, LWS, fp16
   * loss scaling, a process group, subsets of different lengths, per-member learning rates) throws a
   * RangeError saying why.
   */
  stacked?: boolean | 'auto';
}

export interface MemberEvalOptions {
  indices?: Int32Array;
  batchSize?: number;
  normalize?: Normalization;
  logits?: boolean;
  /** As {@link MemberTrainOptions.stacked}: one pass of the stacked network for every member. */
  stacked?: boolean | 'auto';
}

export interface MemberEvalResult {
  preds: Int32Array;
  logits?: Float32Array;
  numClasses: number;
}

interface MemberAddon {
  trainMembers(models: NativeModel[], dataset: NativeDataset, indices: Int32Array[], options: object): Promise<TrainResult[]>;
  evaluateMembers(models: NativeModel[], dataset: NativeDataset, indices: Int32Array | null, options: object): Promise<MemberEvalResult[]>;
}

function handleOf(m: Model): NativeModel {
  return m['handle'];
}

function normalization(n: Normalization | undefined): unknown {
  if (!n || typeof n !== 'object') return n;
  return { mean: Array.from(n.mean), std: Array.from(n.std) };
}

export class MemberGroup implements Disposable {
  readonly members: Model[];

  /** Takes ownership of the models (dispose() disposes them). */
  constructor(members: Model[]) {
    if (!Array.isArray(members) || members.length === 0) throw new TypeError('MemberGroup: members must be a non-empty array of Model');
    for (const [k, m] of members.entries()) {
      if (!(m instanceof Model)) throw new TypeError(`MemberGroup: members[${k}] is not a Model`);
    }
    this.members = members;
  }

  /** n members built from one starting state (weights and BatchNorm statistics). */
  static fromState(options: ModelOptions, state: StateDict, n: number): MemberGroup {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`MemberGroup.fromState: n must be an integer >= 1, got ${n}`);
    const models: Model[] = [];
    try {
      for (let k = 0; k < n; k++) {
        const m = new Model(options);
        models.push(m);
        m.loadStateDict(state);
      }
    } catch (err) {
      for (const m of models) m.dispose();
      throw err;
    }
    return new MemberGroup(models);
  }

  get size(): number {
    return this.members.length;
  }

  /** Trains member k over indices[k] in order, all members in one native call; one result per member. */
  train(dataset: Dataset, indices: Int32Array[], opts: MemberTrainOptions): Promise<TrainResult[]> {
    if (!(dataset instanceof Dataset)) throw new TypeError('MemberGroup.train: dataset must be a Dataset');
    const addon = native() as unknown as MemberAddon;
    return addon.trainMembers(this.members.map(handleOf), dataset.handle, indices, { ...opts, normalize: normalization(opts.normalize) });
  }

  /** One pass over the images for all members (BatchNorm in eval mode); one result per member. */
  evaluate(dataset: Dataset, opts: MemberEvalOptions = {}): Promise<MemberEvalResult[]> {
    if (!(dataset instanceof Dataset)) throw new TypeError('MemberGroup.evaluate: dataset must be a Dataset');
    const { indices, ...rest } = opts;
    const addon = native() as unknown as MemberAddon;
    return addon.evaluateMembers(this.members.map(handleOf), dataset.handle, indices ?? null, { ...rest, normalize: normalization(rest.normalize) });
  }

  dispose(): void {
    for (const m of this.members) if (!m.disposed) m.dispose();
  }
  [Symbol.dispose](): void {
    this.dispose();
  }
}
