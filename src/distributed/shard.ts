/**
 * Data-parallel sharding of an epoch: every rank holds the same global sample order (same seed), the
 * global batch of B samples is cut into worldSize contiguous parts, and rank r trains on its part of
 * every global batch with per-rank batch size B / worldSize. The gradient of a step, summed over the
 * ranks with weights n_r / N (this rank's share of the global batch), is the gradient of the mean loss
 * over the whole global batch: the step a single process takes on it.
 */

export interface Shard {
  /** This rank's samples, global batch after global batch (its part of each). */
  indices: Int32Array;
  /** n_r / N for each step. */
  gradWeights: Float32Array;
  /** Global batches (= steps on every rank). */
  steps: number;
  /** Samples of the global order left out (a last global batch too small to give each rank `minPerRank`). */
  dropped: number;
}

/** The per-rank batch size, or an Error naming the setting when the global batch does not divide. */
export function perRankBatch(batchSize: number, worldSize: number, where: string): number {
  if (!Number.isInteger(batchSize / worldSize) || batchSize < worldSize) {
    throw new Error(`${where}: batchSize ${batchSize} is the global batch and must be a multiple of the world size ${worldSize} ` +
      `(each rank trains batchSize / worldSize per step)`);
  }
  return batchSize / worldSize;
}

/**
 * Rank `rank`'s shard of `order` (global batches of `batchSize`). Part r of a global batch of L samples
 * is [floor(r L / W), floor((r + 1) L / W)): every part of a full batch has B / W samples; a last, short
 * global batch whose smallest part would hold fewer than `minPerRank` samples (2 for train-mode
 * BatchNorm) is left out, on every rank alike.
 */
export function shardEpoch(order: Int32Array, batchSize: number, rank: number, worldSize: number, minPerRank = 1): Shard {
  const per = perRankBatch(batchSize, worldSize, 'shardEpoch');
  let steps = Math.ceil(order.length / batchSize);
  const lastLen = order.length - (steps - 1) * batchSize;
  let dropped = 0;
  if (steps > 0 && Math.floor(lastLen / worldSize) < minPerRank) {
    steps -= 1;
    dropped = lastLen;
  }
  const indices: number[] = [];
  const gradWeights = new Float32Array(steps);
  for (let s = 0; s < steps; s++) {
    const start = s * batchSize;
    const len = Math.min(batchSize, order.length - start);
    const a = Math.floor((rank * len) / worldSize), b = Math.floor(((rank + 1) * len) / worldSize);
    for (let i = a; i < b; i++) indices.push(order[start + i]);
    gradWeights[s] = (b - a) / len;
    if (b - a > per) throw new Error('shardEpoch: internal error, a part exceeds the per-rank batch');
  }
  return { indices: Int32Array.from(indices), gradWeights, steps, dropped };
}
