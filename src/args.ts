/**
 * Argument checks for the public library functions: one mechanism and one message style, so that a
 * wrong value passed from JavaScript (which TypeScript's types do not stop) fails at the call with
 * `<function>: <argument> must be <expected>, got <what was passed>` instead of an internal error
 * later. A wrong type is a TypeError; a value of the right type outside its range is a RangeError.
 *
 * A check is a function `(value, what) => value` where `what` names the argument
 * ('loadModel: options.device'); build them with the helpers below and call them with {@link arg}.
 */

export type Check<T> = (value: unknown, what: string) => T;

/** A short description of a value for error messages: 'null', 'a Float32Array', "'abc'", '42'. */
export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (Array.isArray(v)) return `an array of length ${v.length}`;
  if (typeof v === 'string') return v.length > 60 ? `a string of length ${v.length}` : `'${v}'`;
  if (typeof v === 'function') return 'a function';
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v !== 'object') return String(v);
  const name = Object.getPrototypeOf(v)?.constructor?.name;
  return !name || name === 'Object' ? 'an object' : `${/^[AEIO]/.test(name) ? 'an' : 'a'} ${name}`;
}

function typeError(what: string, expected: string, v: unknown): never {
  throw new TypeError(`${what} must be ${expected}, got ${describe(v)}`);
}

/** Checks `value` as argument `name` of function `fn` and returns it typed. */
export function arg<T>(fn: string, name: string, value: unknown, check: Check<T>): T {
  return check(value, `${fn}: ${name}`);
}

export const is = {
  string(opts: { nonEmpty?: boolean } = {}): Check<string> {
    return (v, what) => {
      if (typeof v !== 'string') typeError(what, opts.nonEmpty ? 'a non-empty string' : 'a string', v);
      if (opts.nonEmpty && v.length === 0) throw new RangeError(`${what} must be a non-empty string, got ''`);
      return v;
    };
  },

  /** A file path: a non-empty string. */
  path(): Check<string> {
    return is.string({ nonEmpty: true });
  },

  boolean(): Check<boolean> {
    return (v, what) => (typeof v === 'boolean' ? v : typeError(what, 'a boolean', v));
  },

  integer(opts: { min?: number; max?: number } = {}): Check<number> {
    const { min = -Infinity, max = Infinity } = opts;
    const range = Number.isFinite(min) && Number.isFinite(max) ? ` in [${min}, ${max}]` : Number.isFinite(min) ? ` >= ${min}` : '';
    return (v, what) => {
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) typeError(what, `an integer${range}`, v);
      if (v < min || v > max) throw new RangeError(`${what} must be an integer${range}, got ${v}`);
      return v;
    };
  },

  /** A finite number. */
  number(): Check<number> {
    return (v, what) => (typeof v === 'number' && Number.isFinite(v) ? v : typeError(what, 'a finite number', v));
  },

  oneOf<const T extends readonly (string | number)[]>(values: T): Check<T[number]> {
    return (v, what) => {
      if ((values as readonly unknown[]).includes(v)) return v as T[number];
      const list = values.map((x) => (typeof x === 'string' ? `'${x}'` : String(x))).join(', ');
      throw new (typeof v === typeof values[0] ? RangeError : TypeError)(`${what} must be one of ${list}, got ${describe(v)}`);
    };
  },

  /** An instance of `cls`, described as `expected` (default: 'a <class name>'). */
  instance<T>(cls: abstract new (...a: never[]) => T, expected = `${/^[AEIO]/.test(cls.name) ? 'an' : 'a'} ${cls.name}`): Check<T> {
    return (v, what) => (v instanceof cls ? v : typeError(what, expected, v));
  },

  /** An array whose elements pass `item`; `length` fixes its length. */
  array<T>(item: Check<T>, opts: { length?: number; minLength?: number } = {}): Check<T[]> {
    return (v, what) => {
      if (!Array.isArray(v)) typeError(what, opts.length !== undefined ? `an array of length ${opts.length}` : 'an array', v);
      if (opts.length !== undefined && v.length !== opts.length) {
        throw new RangeError(`${what} must be an array of length ${opts.length}, got length ${v.length}`);
      }
      if (opts.minLength !== undefined && v.length < opts.minLength) {
        throw new RangeError(`${what} must have at least ${opts.minLength} element(s), got ${v.length}`);
      }
      return v.map((x, i) => item(x, `${what}[${i}]`));
    };
  },

  /** `undefined` passes as is; anything else must pass `check`. */
  optional<T>(check: Check<T>): Check<T | undefined> {
    return (v, what) => (v === undefined ? undefined : check(v, what));
  },

  /** The first check that accepts the value wins; otherwise a TypeError with `expected`. */
  anyOf<C extends Check<unknown>[]>(expected: string, ...checks: C): Check<ReturnType<C[number]>> {
    return (v, what) => {
      for (const check of checks) {
        try {
          return check(v, what) as ReturnType<C[number]>;
        } catch {
          // try the next one
        }
      }
      return typeError(what, expected, v);
    };
  },

  /**
   * A plain object with these fields (each checked as `<what>.<field>`). Unknown keys are refused
   * (a misspelt option would otherwise be ignored silently) unless `extra` is set.
   */
  object<S extends Record<string, Check<unknown>>>(fields: S, opts: { extra?: boolean } = {}): Check<{ [K in keyof S]: ReturnType<S[K]> }> {
    return (v, what) => {
      if (typeof v !== 'object' || v === null || Array.isArray(v) || ArrayBuffer.isView(v)) typeError(what, 'an object', v);
      const o = v as Record<string, unknown>;
      if (!opts.extra) {
        const unknown = Object.keys(o).filter((k) => !Object.hasOwn(fields, k) && o[k] !== undefined);
        if (unknown.length > 0) {
          const known = Object.keys(fields);
          throw new TypeError(`${what}: unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `'${k}'`).join(', ')}` +
            ` (known: ${known.length ? known.join(', ') : 'none'})`);
        }
      }
      for (const [k, check] of Object.entries(fields)) check(o[k], `${what}.${k}`);
      return o as { [K in keyof S]: ReturnType<S[K]> };
    };
  },

  /** An options object that may be omitted (undefined becomes {}). */
  options<S extends Record<string, Check<unknown>>>(fields: S): Check<Partial<{ [K in keyof S]: ReturnType<S[K]> }>> {
    const object = is.object(fields);
    return (v, what) => (v === undefined ? {} : object(v, what));
  },

  /** 'cpu', 'cuda' or 'cuda:N'. */
  device(): Check<'cpu' | 'cuda' | `cuda:${number}`> {
    return (v, what) => {
      if (typeof v !== 'string') typeError(what, "a device string ('cpu', 'cuda' or 'cuda:N')", v);
      if (!/^(cpu|cuda(:\d+)?)$/.test(v)) throw new RangeError(`${what} must be 'cpu', 'cuda' or 'cuda:N', got ${describe(v)}`);
      return v as 'cpu' | 'cuda' | `cuda:${number}`;
    };
  },
};
