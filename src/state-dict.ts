/** A model's parameters and buffers, named and ordered exactly like torchvision's `state_dict()`. */

export type DType = 'float32' | 'int64';

export interface StateEntry {
  name: string;
  shape: number[];
  /** 'int64' only for BatchNorm `num_batches_tracked`. */
  dtype: DType;
  data: Float32Array | BigInt64Array;
}

export type StateDict = StateEntry[];

/** The layout of a state dict entry, without its data. */
export interface EntryLayout {
  name: string;
  shape: readonly number[];
  dtype: DType;
}

/** Index a state dict by name (throws on duplicate names). */
export function stateDictToMap(dict: StateDict): Map<string, StateEntry> {
  const map = new Map<string, StateEntry>();
  for (const entry of dict) {
    if (map.has(entry.name)) throw new Error(`duplicate state dict entry '${entry.name}'`);
    map.set(entry.name, entry);
  }
  return map;
}

/**
 * Human-readable differences between two layouts (missing keys, unexpected keys, shape and dtype
 * mismatches); empty when they agree. Order is not compared.
 */
export function compareStateDictLayout(
  expected: readonly EntryLayout[],
  actual: readonly EntryLayout[],
): string[] {
  const actualByName = new Map(actual.map((e) => [e.name, e]));
  const expectedNames = new Set(expected.map((e) => e.name));
  const diffs: string[] = [];
  for (const exp of expected) {
    const act = actualByName.get(exp.name);
    if (!act) {
      diffs.push(`missing key '${exp.name}'`);
      continue;
    }
    if (!sameShape(exp.shape, act.shape)) {
      diffs.push(`shape mismatch for '${exp.name}': expected [${exp.shape}], got [${act.shape}]`);
    }
    if (exp.dtype !== act.dtype) {
      diffs.push(`dtype mismatch for '${exp.name}': expected ${exp.dtype}, got ${act.dtype}`);
    }
  }
  for (const act of actual) {
    if (!expectedNames.has(act.name)) diffs.push(`unexpected key '${act.name}'`);
  }
  return diffs;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
