/**
 * Seeded pseudo-random numbers for every sampling decision in a run.
 *
 * Generator: xoshiro128** (Blackman & Vigna) on four 32-bit words, so the hot path is plain
 * `Math.imul` / shift arithmetic. Its state is filled from the splitmix64 sequence started at a
 * 64-bit key (the canonical way to seed the xoshiro family); only that seeding uses BigInt.
 *
 * Streams: `new Rng(seed)` uses key = seed. `rng.fork(s)` returns a generator whose key is a hash of
 * (parent key, s), independent of how many numbers the parent has drawn, so e.g. BTM subset k is
 * reproducible from (seed, k) alone. `new Rng(seed, [a, b])` is the same as `new Rng(seed).fork(a).fork(b)`.
 */

/** Largest seed / stream id accepted: 2^53, the end of the exactly representable integers. */
export const MAX_SEED = 2 ** 53;

const MASK64 = (1n << 64n) - 1n;
const GOLDEN64 = 0x9e3779b97f4a7c15n;
/** Salt that separates fork keys from the splitmix64 sequence of the parent key. */
const FORK_SALT = 0x5851f42d4c957f2dn;

/**
 * Throws a RangeError naming `name` unless `value` is an integer in [min, max]. Shared by the
 * sampling modules so that all argument errors read the same way.
 */
export function assertInteger(name: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be an integer in [${min}, ${max}], got ${value}`);
  }
}

/** The splitmix64 output function (a bijection on 64-bit integers). */
function mix64(z: bigint): bigint {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/** Output `n` (1-based) of the splitmix64 generator started at `key`. */
function splitmix64(key: bigint, n: bigint): bigint {
  return mix64((key + n * GOLDEN64) & MASK64);
}

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

/** A writable array-like: plain arrays and typed arrays. */
export interface MutableArrayLike<T> {
  readonly length: number;
  [index: number]: T;
}

export type RngState = [number, number, number, number];

export class Rng {
  /** The root seed and the fork path that identify this generator's stream. */
  readonly seed: number;
  readonly path: readonly number[];
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  /** @param seed integer in [0, 2^53]; @param path fork stream ids, each in [0, 2^53]. */
  constructor(seed: number, path: readonly number[] = []) {
    assertInteger('seed', seed, 0, MAX_SEED);
    path.forEach((s) => assertInteger('stream', s, 0, MAX_SEED));
    this.seed = seed;
    this.path = Object.freeze([...path]);
    let key = BigInt(seed);
    for (const s of path) key = mix64(key ^ mix64(BigInt(s) ^ FORK_SALT));
    const a = splitmix64(key, 1n);
    const b = splitmix64(key, 2n);
    // xoshiro must not start from the all-zero state; no 64-bit key maps to it in practice.
    this.setState([Number(a & 0xffffffffn), Number(a >> 32n), Number(b & 0xffffffffn), Number(b >> 32n)]);
  }

  /** An independent child generator for stream `stream`, derived from this generator's seed and path. */
  fork(stream: number): Rng {
    return new Rng(this.seed, [...this.path, stream]);
  }

  /** The current state, e.g. to checkpoint a sampler mid-run. */
  getState(): RngState {
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0];
  }

  setState(state: readonly number[]): void {
    if (state.length !== 4 || state.some((w) => !Number.isInteger(w) || w < 0 || w > 0xffffffff)) {
      throw new RangeError('state must be four unsigned 32-bit integers');
    }
    if (state.every((w) => w === 0)) throw new RangeError('state must not be all zero');
    [this.s0, this.s1, this.s2, this.s3] = state.map((w) => w | 0);
  }

  /** Uniform integer in [0, 2^32). */
  nextUint32(): number {
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9);
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result >>> 0;
  }

  /** Uniform float in [0, 1) with 53 random bits. */
  nextFloat(): number {
    const hi = this.nextUint32() >>> 5; // 27 bits
    const lo = this.nextUint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Unbiased uniform integer in [0, n), for integer n in [1, 2^32] (rejection of the biased low range). */
  int(n: number): number {
    assertInteger('n', n, 1, 0x100000000);
    const threshold = 0x100000000 % n; // 2^32 mod n values would be over-represented
    let r = this.nextUint32();
    while (r < threshold) r = this.nextUint32();
    return r % n;
  }

  /**
   * Fisher–Yates shuffle in place (forward form: position i receives a uniform pick from [i, n)).
   * With `count` < length only the first `count` positions are drawn: array[0, count) is then a
   * uniform sample without replacement, and for a fixed stream it is a prefix of the full shuffle.
   */
  shuffle<A extends MutableArrayLike<unknown>>(array: A, count: number = array.length): A {
    const n = array.length;
    assertInteger('count', count, 0, n);
    for (let i = 0; i < Math.min(count, n - 1); i++) {
      const j = i + this.int(n - i);
      const tmp = array[i];
      array[i] = array[j];
      array[j] = tmp;
    }
    return array;
  }

  /** A uniformly random permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    assertInteger('n', n, 0, 0x7fffffff);
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = i;
    return this.shuffle(out);
  }
}
