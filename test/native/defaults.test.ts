// The native defaults and bounds live in one place (native/defaults.h); src/config.ts must agree:
// where both have a default it is the same, and every range config.ts accepts lies inside the range
// the native layer accepts (so a valid config can never be refused by the addon).
import { describe, expect, it } from 'vitest';
import { ConfigSchema, EvalSchema, LossSchema, PosttrainSchema, PretrainSchema } from '../../src/config.js';
import { native, type NativeRange } from '../../src/native.js';
import { DistSettingsSchema } from '../../src/distributed/settings.js';

const d = native()._defaults();

/** min / max / default of a zod number schema, through optional / default wrappers. */
function numberInfo(schema: unknown): { min: number; max: number; default?: unknown } {
  let s = schema as { def: { type: string; defaultValue?: unknown; innerType?: unknown }; minValue?: number | null; maxValue?: number | null };
  let def: unknown;
  while (s.def.type === 'default' || s.def.type === 'optional' || s.def.type === 'prefault') {
    if (s.def.type === 'default') def = s.def.defaultValue;
    s = s.def.innerType as typeof s;
  }
  expect(s.def.type).toBe('number');
  return { min: s.minValue ?? -Infinity, max: s.maxValue ?? Infinity, default: def };
}

function within(name: string, schema: unknown, native: NativeRange, sameDefault = true) {
  const c = numberInfo(schema);
  expect(c.min, `${name}: config min ${c.min} below native min ${native.min}`).toBeGreaterThanOrEqual(native.min);
  expect(c.max, `${name}: config max ${c.max} above native max ${native.max}`).toBeLessThanOrEqual(native.max);
  if (sameDefault && c.default !== undefined && native.default !== undefined) {
    expect(c.default, `${name}: config default vs native default`).toBe(native.default);
  }
}

describe('native defaults and src/config.ts agree', () => {
  it('the addon exposes its defaults (test-only export)', () => {
    expect(d.momentum.default).toBe(0.9);
    expect(d.weightDecay.default).toBe(5e-4);
    expect(d.trainBatchSize.default).toBe(128);
    expect(d.gmlPower).toEqual({ default: 1, min: 0.1, max: 10 });
  });

  it('optimizer and schedule fields of every training stage', () => {
    for (const [stage, schema] of Object.entries({ pretrain: PretrainSchema, posttrain: PosttrainSchema })) {
      const s = schema.shape as Record<string, unknown>;
      within(`${stage}.momentum`, s.momentum, d.momentum);
      within(`${stage}.weightDecay`, s.weightDecay, d.weightDecay);
      within(`${stage}.lr`, s.lr, d.lr);
      within(`${stage}.batchSize`, s.batchSize, d.trainBatchSize);
      within(`${stage}.mixupAlpha`, s.mixupAlpha, d.mixupAlpha);
      const nesterov = (s.nesterov as { def: { defaultValue: unknown } }).def.defaultValue;
      expect(nesterov, `${stage}.nesterov default`).toBe(d.nesterov);
    }
    within('pretrain.cropPadding', PretrainSchema.shape.cropPadding, d.cropPadding);
  });

  it('loss parameters', () => {
    for (const option of LossSchema.options) {
      const shape = option.shape as Record<string, unknown>;
      if ('p' in shape) within('loss gml.p', shape.p, d.gmlPower);
      if ('epsHead' in shape) {
        within('loss las.epsHead', shape.epsHead, d.labelSmoothing, false);
        within('loss las.epsTail', shape.epsTail, d.labelSmoothing, false);
      }
    }
  });

  it("MORE's amplitude: the schedule's coefficient never exceeds it, so it must lie in the native coefficient range", () => {
    const more = (PretrainSchema.shape.more as unknown as { def: { innerType: { shape: Record<string, unknown> } } }).def.innerType.shape;
    within('pretrain.more.amplitude', more.amplitude, d.moreCoefficient);
  });

  it('evaluation, threads and seeds', () => {
    // The range only: the pipeline always passes eval.batchSize (default 512); the native default
    // (256) is what a direct Model.evaluate call without batchSize gets.
    within('eval.batchSize', EvalSchema.shape.batchSize, d.evalBatchSize, false);
    const c = ConfigSchema.def.in ?? ConfigSchema; // superRefine wraps the object in zod 4
    const shape = (c as unknown as { shape: Record<string, unknown> }).shape;
    within('threads', shape.threads, d.threads);
    within('seed', shape.seed, d.seed);
  });

  it('distributed settings: SyncBatchNorm on by default in both, and the timeout within the native bounds', () => {
    const shape = DistSettingsSchema.shape as unknown as Record<string, { def: { defaultValue: unknown } }>;
    expect(shape.syncBatchNorm.def.defaultValue, 'dist.syncBatchNorm default').toBe(d.syncBatchNorm);
    expect(d.syncBatchNorm).toBe(true);
    expect(Number(shape.timeoutSeconds.def.defaultValue) * 1000).toBe(d.distTimeoutMs.default);
  });
});
