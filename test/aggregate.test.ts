import { describe, expect, it } from 'vitest';
import { aggregateRuns, formatAggregate, formatCurves, methodOf, RowSelectionError, selectRows } from '../src/report/aggregate.js';
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
  it('a row of a single run shows its value without a spread, a row of several runs mean ± std', () => {
    const agg = aggregateRuns([
      { name: 'btm-s0', rows: [row('pretrain', 'pre-train', 0.5, 0.8), row('posttrain', 'post', 0.6, 0.8)] },
      { name: 'btm-s1', rows: [row('pretrain', 'pre-train', 0.7, 0.9)] },
    ]);
    const lines = formatAggregate(agg).split('\n');
    expect(lines[2]).toMatch(/^btm +pre-train +2 +60\.00 ± 14\.14 /);
    expect(lines[3]).toMatch(/^btm +post +1 +60\.00 +60\.00 +30\.00 +80\.00$/);
    expect(formatAggregate(agg, true)).toContain('| btm | post | 1 | 60.00 | 60.00 | 30.00 | 80.00 |');
    expect(formatAggregate(aggregateRuns([{ name: 'one', rows: [row('pretrain', 'p', 0.5, 0.5)] }]))).not.toContain('±');
  });
});

describe('selectRows (--rows of btm report and btm plot)', () => {
  const agg = aggregateRuns([
    { name: 'btm-s0', rows: [row('pretrain', 'pre-train', 0.5, 0.8), row('btm-0', 'BTM fine-tune #1', 0.6, 0.8), row('btm-merge', 'BTM merged (uniform)', 0.6, 0.8)] },
  ]);
  it('keeps the rows whose label matches, all of them without a pattern', () => {
    expect(selectRows(agg, '^(?!BTM fine-tune #)').map((r) => r.label)).toEqual(['pre-train', 'BTM merged (uniform)']);
    expect(selectRows(agg)).toBe(agg);
  });
  it('a pattern that matches nothing, or is not a regular expression, is an error naming it', () => {
    expect(() => selectRows(agg, '^nothing')).toThrow(RowSelectionError);
    expect(() => selectRows(agg, '^nothing')).toThrow("--rows '^nothing' matches no row; the runs' rows are: 'pre-train', 'BTM fine-tune #1', 'BTM merged (uniform)'");
    expect(() => selectRows(agg, '(')).toThrow(/--rows: not a regular expression: '\('/);
  });
});

describe('formatCurves', () => {
  it('a row per epoch (lr, loss, train accuracy, images/s) and per evaluation (test metrics)', () => {
    const t = formatCurves([
      { kind: 'epoch', time: '', stage: 'pretrain', step: 'pretrain', epoch: 1, epochs: 2, lr: 0.1, loss: 'ce', trainLoss: 1.23456, trainAccuracy: 0.5, imagesPerSec: 812.4, seconds: 1 },
      { kind: 'eval', time: '', ...row('pretrain', 'pre-train', 0.25, 0.75) },
    ]).split('\n');
    expect(t[0]).toMatch(/^step +epoch +lr +loss +train acc % +img\/s +test acc % +H-mean % +G-mean % +lowest %$/);
    expect(t[2]).toMatch(/^pretrain +1\/2 +0\.100 +1\.2346 +50\.00 +812 +- +- +- +-$/);
    expect(t[3]).toMatch(/^pretrain +test +- +- +- +- +75\.00 +25\.00 +25\.00 +12\.50$/);
  });
});
