import { describe, expect, it } from 'vitest';
import { aggregateRuns, formatAggregate, methodOf } from '../src/report/aggregate.js';
import type { ResultRow } from '../src/pipeline/run-state.js';

const row = (step: string, label: string, h: number, acc: number): ResultRow => ({
  step, stage: step, label, accuracy: acc, arithmeticMean: acc, geometricMean: h, harmonicMean: h, lowestRecall: h / 2,
  lowestClass: 0, zeroRecallClasses: 0, many: null, medium: null, few: null, perClassRecall: [], trainSeconds: 1,
});

describe('aggregateRuns', () => {
  it('groups by method (name without -s<seed>) and row label, with mean and sample std', () => {
    const agg = aggregateRuns([
      { name: 'btm-s0', rows: [row('pretrain', 'pre-train', 0.5, 0.8), row('posttrain', 'post', 0.6, 0.8)] },
      { name: 'btm-s1', rows: [row('pretrain', 'pre-train', 0.7, 0.9), row('posttrain', 'post', 0.6, 0.9)] },
      { name: 'crt-s0', rows: [row('init', 'initial model (runs/btm-s0/pretrain.safetensors)', 0.5, 0.8)] },
      { name: 'crt-s1', rows: [row('init', 'initial model (runs/btm-s1/pretrain.safetensors)', 0.7, 0.9)] },
    ]);
    expect(agg.map((a) => [a.method, a.label, a.runs])).toEqual([
      ['btm', 'pre-train', 2], ['btm', 'post', 2], ['crt', 'initial model', 2],
    ]);
    expect(agg[0].mean.harmonicMean).toBeCloseTo(0.6, 12);
    expect(agg[0].std.harmonicMean).toBeCloseTo(Math.SQRT2 * 0.1, 12);
    expect(agg[1].std.harmonicMean).toBe(0);
    expect(formatAggregate(agg)).toMatch(/60\.00 ± 14\.14/);
    expect(formatAggregate(agg, true).split('\n')[1]).toBe('| --- | --- | --- | --- | --- | --- | --- |');
  });
  it('methodOf strips only a trailing seed suffix', () => {
    expect(methodOf('btm-fc-s12')).toBe('btm-fc');
    expect(methodOf('my-run')).toBe('my-run');
  });
});
