/**
 * Weight-space merging of fine-tuned models (BTM's "Merging" step, §3.3; Table 6; Figures 1–2).
 *
 * - {@link StateAccumulator} / {@link mergeFiles}: (weighted) averaging, streamed one model at a time.
 * - {@link adaptiveWeights}: "Adaptive Ratio Based on H&G-Mean" (weights proportional to scores).
 * - {@link greedySoup}: Wortsman et al.'s greedy soup ("Greedy Soup Based on H&G-Mean").
 * - {@link interpolate} / {@link interpolationSweep}: (1 - λ)·a + λ·b, for the curves of Figures 1–2.
 *
 * int64 entries (BatchNorm `num_batches_tracked`, the only int64 tensors in a torchvision state
 * dict) get the weighted mean rounded to the nearest integer (`Math.round`: .5 rounds up). BTM's
 * merge.py averages every key alike; a batch counter has no meaning as a fraction, and rounding
 * keeps the dtype int64 so the merged file loads into torchvision unchanged. Counters are summed in
 * float64, exact below 2^53.
 */
import { readSafetensors } from './safetensors.js';
import {
  compareStateDictLayout, stateDictToMap, type DType, type EntryLayout, type StateDict, type StateEntry,
} from './state-dict.js';

interface Slot {
  name: string;
  shape: number[];
  dtype: DType;
  /** Running Σ weight·value, in float64 whatever the dtype. */
  sum: Float64Array;
}

/**
 * Streaming weighted average of state dicts with one layout. Memory is one float64 sum per entry
 * (twice a float32 model), whatever the number of states added.
 */
export class StateAccumulator {
  #slots: Slot[] | undefined;
  #byName = new Map<string, Slot>();
  #count = 0;
  #totalWeight = 0;

  /** Number of states added (weight-0 states included). */
  get count(): number {
    return this.#count;
  }

  /** Sum of the weights added so far. */
  get totalWeight(): number {
    return this.#totalWeight;
  }

  /**
   * Add `weight`·`state` to the running sum. The first state fixes the layout (and the order of
   * {@link result}); every later one must have the same names, shapes and dtypes, in any order.
   * Errors name the state by its 0-based index among the states added, then `label` if given:
   * `state #3 (b.safetensors): missing key 'fc.bias'`. A weight-0 state is checked but not summed,
   * so its NaN/Inf values cannot leak in. Nothing changes when it throws.
   */
  add(state: StateDict, weight = 1, label?: string): this {
    const where = `state #${this.#count}${label === undefined ? '' : ` (${label})`}`;
    if (!Number.isFinite(weight) || weight < 0) {
      throw new RangeError(`${where}: weight must be finite and >= 0, got ${weight}`);
    }
    const byName = checkState(where, this.#slots, state);
    if (!this.#slots) {
      this.#slots = state.map((e) => ({
        name: e.name, shape: [...e.shape], dtype: e.dtype, sum: new Float64Array(e.data.length),
      }));
      for (const slot of this.#slots) this.#byName.set(slot.name, slot);
    }
    if (weight > 0) {
      for (const [name, { data }] of byName) {
        const { sum } = this.#byName.get(name)!;
        if (data instanceof Float32Array) {
          for (let i = 0; i < sum.length; i++) sum[i] += weight * data[i];
        } else {
          for (let i = 0; i < sum.length; i++) sum[i] += weight * Number(data[i]);
        }
      }
    }
    this.#count++;
    this.#totalWeight += weight;
    return this;
  }

  /** The weighted mean, float32 (int64 entries rounded), in the first state's order. Fresh arrays. */
  result(): StateDict {
    if (!this.#slots) throw new Error('StateAccumulator.result(): no state has been added');
    const total = this.#totalWeight;
    if (!(total > 0)) throw new RangeError(`StateAccumulator.result(): total weight is ${total}, must be > 0`);
    return this.#slots.map(({ name, shape, dtype, sum }) => {
      if (dtype === 'float32') {
        const data = new Float32Array(sum.length);
        for (let i = 0; i < sum.length; i++) data[i] = sum[i] / total;
        return { name, shape: [...shape], dtype, data };
      }
      const data = new BigInt64Array(sum.length);
      for (let i = 0; i < sum.length; i++) data[i] = BigInt(Math.round(sum[i] / total));
      return { name, shape: [...shape], dtype, data };
    });
  }

  /** An independent copy (used by {@link greedySoup} to try a candidate without touching the soup). */
  clone(): StateAccumulator {
    const copy = new StateAccumulator();
    if (this.#slots) {
      copy.#slots = this.#slots.map((s) => ({ ...s, shape: [...s.shape], sum: s.sum.slice() }));
      for (const slot of copy.#slots) copy.#byName.set(slot.name, slot);
    }
    copy.#count = this.#count;
    copy.#totalWeight = this.#totalWeight;
    return copy;
  }
}

/**
 * Index `state` by name after checking it: unique names, data matching dtype and shape, and (given
 * a `reference`) the same names, shapes and dtypes. Throws one Error listing every difference.
 */
function checkState(where: string, reference: readonly EntryLayout[] | undefined, state: StateDict): Map<string, StateEntry> {
  let byName: Map<string, StateEntry>;
  try {
    byName = stateDictToMap(state);
  } catch (e) {
    throw new Error(`${where}: ${(e as Error).message}`);
  }
  const diffs = reference ? compareStateDictLayout(reference, state) : [];
  for (const { name, shape, dtype, data } of state) {
    const numel = shape.reduce((a, b) => a * b, 1);
    const typeOk = dtype === 'float32' ? data instanceof Float32Array : data instanceof BigInt64Array;
    if (!typeOk) diffs.push(`'${name}' has ${data.constructor.name} data for dtype ${dtype}`);
    else if (data.length !== numel) diffs.push(`'${name}' has ${data.length} elements, shape [${shape}] needs ${numel}`);
  }
  if (diffs.length > 0) throw new Error(`${where}: ${diffs.join('; ')}`);
  return byName;
}

/**
 * Throws a RangeError naming `name` unless `values` are finite, >= 0, with a positive sum, and
 * (when `length` is given) exactly `length` of them.
 */
function checkWeights(name: string, values: readonly number[], length?: number): void {
  if (length !== undefined && values.length !== length) {
    throw new RangeError(`${name} has ${values.length} entries, expected ${length}`);
  }
  const bad = values.findIndex((w) => !Number.isFinite(w) || w < 0);
  if (bad >= 0) throw new RangeError(`${name}[${bad}] must be finite and >= 0, got ${values[bad]}`);
  const sum = values.reduce((a, b) => a + b, 0);
  if (!(sum > 0)) throw new RangeError(`${name} must have a positive sum, got ${sum}`);
}

/**
 * Weighted average of safetensors checkpoints (uniform by default: BTM's 1/N_D merge). Reads one
 * file at a time and drops it once added, so peak memory is the accumulator plus one checkpoint,
 * not N. `weights` need not sum to one (the mean divides by their sum). Errors name the file.
 */
export async function mergeFiles(paths: string[], options: { weights?: number[] } = {}): Promise<StateDict> {
  if (paths.length === 0) throw new RangeError('mergeFiles: paths is empty');
  const weights = options.weights ?? paths.map(() => 1);
  checkWeights('weights', weights, paths.length);
  const acc = new StateAccumulator();
  for (let i = 0; i < paths.length; i++) {
    acc.add((await readSafetensors(paths[i])).dict, weights[i], paths[i]);
  }
  return acc.result();
}

/**
 * Merge weights proportional to each model's score (e.g. its harmonic or geometric mean recall on
 * its balanced training set), summing to one: the paper's "Adaptive Ratio Based on H&G-Mean".
 * Scores must be finite and >= 0, not all zero (RangeError naming `scores`).
 */
export function adaptiveWeights(scores: number[]): number[] {
  checkWeights('scores', scores);
  const sum = scores.reduce((a, b) => a + b, 0);
  return scores.map((s) => s / sum);
}

export interface SoupStep {
  id: string;
  accepted: boolean;
  /** Score of the uniform average of the soup plus this candidate. */
  scoreWith: number;
  /** Score of the soup before this candidate was tried. */
  scoreBefore: number;
}

export interface SoupResult {
  /** Ids of the models in the soup, in the order they were added. */
  members: string[];
  /** Score of the final soup. */
  score: number;
  /** Uniform average of the members. */
  state: StateDict;
  /** One step per candidate after the first (the best, which seeds the soup), in the order tried. */
  trace: SoupStep[];
}

/**
 * Greedy soup (Wortsman et al. 2022, Recipe 1): sort candidates by individual score, descending
 * (ties keep input order), seed the soup with the best, then add each next one only if the uniform
 * average with it scores >= the current soup ("we use one model only when merging the model is
 * better than not merging"). A NaN trial score is never accepted.
 *
 * The seed soup is scored with `evaluate` rather than trusting its `score`, so every comparison is
 * between two `evaluate` results (one extra evaluation).
 *
 * Memory/IO trade-off: each candidate is loaded exactly once, never re-loaded. The soup is a
 * {@link StateAccumulator}; a trial is a clone of it plus the candidate, and replaces the soup if
 * accepted. Peak memory is two float64 accumulators, one loaded candidate and one float32 trial
 * state, about 6× a float32 model, independent of the number of candidates. The final state is
 * recomputed from the soup's accumulator (not kept between trials).
 */
export async function greedySoup(
  candidates: { id: string; score: number }[],
  load: (id: string) => Promise<StateDict>,
  evaluate: (state: StateDict) => Promise<number>,
): Promise<SoupResult> {
  if (candidates.length === 0) throw new RangeError('greedySoup: candidates is empty');
  const nan = candidates.find((c) => Number.isNaN(c.score));
  if (nan) throw new RangeError(`greedySoup: candidate '${nan.id}' has a NaN score`);
  const [first, ...rest] = [...candidates].sort((x, y) => y.score - x.score);

  let soup = new StateAccumulator().add(await load(first.id), 1, first.id);
  let score = await evaluate(soup.result());
  const members = [first.id];
  const trace: SoupStep[] = [];
  for (const { id } of rest) {
    const trial = soup.clone().add(await load(id), 1, id);
    const scoreWith = await evaluate(trial.result());
    const accepted = scoreWith >= score;
    trace.push({ id, accepted, scoreWith, scoreBefore: score });
    if (accepted) {
      soup = trial;
      score = scoreWith;
      members.push(id);
    }
  }
  return { members, score, state: soup.result(), trace };
}

/**
 * (1 - λ)·a + λ·b, computed in float64 and stored as float32; int64 entries rounded. λ = 0 and
 * λ = 1 return exact copies of a and b. Layouts must match (errors name a as state #0, b as #1).
 */
export function interpolate(a: StateDict, b: StateDict, lambda: number): StateDict {
  if (!(lambda >= 0 && lambda <= 1)) throw new RangeError(`lambda must be in [0, 1], got ${lambda}`);
  if (lambda === 0 || lambda === 1) {
    // Copies in a's order: the float64 sum would turn -0 into +0 and may alter NaN payloads.
    checkState('state #0 (a)', undefined, a);
    const bByName = checkState('state #1 (b)', a, b);
    return a.map((e) => copyEntry(lambda === 0 ? e : bByName.get(e.name)!));
  }
  return new StateAccumulator().add(a, 1 - lambda, 'a').add(b, lambda, 'b').result();
}

function copyEntry(e: StateEntry): StateEntry {
  return { name: e.name, shape: [...e.shape], dtype: e.dtype, data: e.data.slice() };
}

/**
 * Score the interpolations between a (λ = 0) and b (λ = 1) at each λ, one at a time (Figures 1–2:
 * raw vs fine-tuned model, and models fine-tuned on D_A vs D_B). All λ are checked first.
 */
export async function interpolationSweep(
  a: StateDict,
  b: StateDict,
  lambdas: number[],
  evaluate: (state: StateDict) => Promise<number>,
): Promise<{ lambda: number; score: number }[]> {
  const bad = lambdas.findIndex((l) => !(l >= 0 && l <= 1));
  if (bad >= 0) throw new RangeError(`lambdas[${bad}] must be in [0, 1], got ${lambdas[bad]}`);
  const out: { lambda: number; score: number }[] = [];
  for (const lambda of lambdas) out.push({ lambda, score: await evaluate(interpolate(a, b, lambda)) });
  return out;
}
