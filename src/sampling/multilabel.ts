/**
 * Samplers for multi-label sets, built on the single-label ones by listing every image under each class
 * it contains: the class-aware sampler draws per class from the images that contain the class, and
 * BTM's balanced few-shot subsets take N_C images containing each class.
 */
import { btmSubsets, type BtmSubsetOptions } from './samplers.js';
import { assertInteger, type Rng } from './rng.js';

/**
 * result[c]: the entries of `indices` whose label set contains c, in their order in `indices`. An
 * image with several labels is listed under each. Throws a RangeError for an index outside
 * `labelSets`, an empty label set or a label outside [0, numClasses).
 */
export function positivesByClass(indices: ArrayLike<number>, labelSets: readonly (readonly number[])[], numClasses: number): Int32Array[] {
  assertInteger('numClasses', numClasses, 1);
  const lists: number[][] = Array.from({ length: numClasses }, () => []);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k];
    if (!Number.isInteger(i) || i < 0 || i >= labelSets.length) throw new RangeError(`index ${i} (position ${k}) is outside the dataset [0, ${labelSets.length})`);
    const set = labelSets[i];
    if (set.length === 0) throw new RangeError(`sample ${i} has an empty label set`);
    for (const c of set) {
      if (!Number.isInteger(c) || c < 0 || c >= numClasses) throw new RangeError(`label ${c} of sample ${i} is outside [0, ${numClasses})`);
      lists[c].push(i);
    }
  }
  return lists.map((l) => Int32Array.from(l));
}

export interface MultiLabelSubsets {
  subsets: Int32Array[];
  /** Classes with fewer than N_C images containing them (they give all they have). */
  shortClasses: number[];
  /** Per subset: draws dropped because the image had been drawn already for another class. */
  duplicates: number[];
}

/**
 * BTM's balanced few-shot subsets on a multi-label set: for each of N_D subsets, N_C images containing
 * each class, drawn without replacement from that class's positives (btmSubsets on positivesByClass).
 * Overlaps: an image that contains several classes may be drawn for more than one of them; it is kept
 * once (its first draw, class-major order), so a subset holds at most N_C * C distinct images and every
 * class appears in at least min(N_C, its positives) of them (more when co-occurring images were drawn
 * for other classes: head classes, which co-occur most, gain the most).
 */
export function multiLabelBtmSubsets(byClass: readonly ArrayLike<number>[], opts: BtmSubsetOptions, rng: Rng): MultiLabelSubsets {
  const { subsets, shortClasses } = btmSubsets(byClass, opts, rng);
  const duplicates: number[] = [];
  const unique = subsets.map((s) => {
    const seen = new Set<number>();
    const out: number[] = [];
    for (const i of s) if (!seen.has(i)) seen.add(i), out.push(i);
    duplicates.push(s.length - out.length);
    return Int32Array.from(out);
  });
  return { subsets: unique, shortClasses, duplicates };
}

/** Images per class in `indices` (images containing the class), for the losses' class counts. */
export function positiveCounts(indices: ArrayLike<number>, labelSets: readonly (readonly number[])[], numClasses: number): number[] {
  return positivesByClass(indices, labelSets, numClasses).map((l) => l.length);
}

/**
 * Images of a multi-label set as text, one `<index>\t<label>,<label>,...` line each in the order of
 * `indices` (BTM's btm/subset-k.txt; `btm split` on a multi-label dataset, after a header comment).
 */
export function formatLabelSetLines(indices: ArrayLike<number>, labelSets: readonly (readonly number[])[]): string {
  return Array.from(indices, (i) => `${i}\t${labelSets[i].join(',')}\n`).join('');
}
