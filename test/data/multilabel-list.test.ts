import { describe, expect, it } from 'vitest';
import { multiHot, multiLabelCounts, parseMultiLabelList } from '../../src/data/multilabel-list.js';

describe('multi-label list files', () => {
  it('parses paths and label sets (sorted), skipping blank lines', () => {
    const r = parseMultiLabelList('a/1.png\t3,17,42\n\nb 2.png\t0\r\nc.png\t 5, 1 \n', 'train.txt');
    expect(r.paths).toEqual(['a/1.png', 'b 2.png', 'c.png']);
    expect(r.labels).toEqual([[3, 17, 42], [0], [1, 5]]);
    expect(r.lines).toEqual([1, 3, 4]);
  });
  it.each([
    ['a.png 3,4', /train\.txt:1: missing tab/],
    ['a.png\t', /train\.txt:1: empty label set/],
    ['a.png\t3,,4', /train\.txt:1: empty label in '3,,4'/],
    ['a.png\t3,x', /train\.txt:1: label 'x' is not an integer/],
    ['a.png\t-2', /train\.txt:1: negative label -2/],
    ['a.png\t4,4', /train\.txt:1: label 4 appears twice/],
    ['ok.png\t1\na.png\t10', /train\.txt:2: label 10 out of range for 10 classes: 'a.png\t10'/],
    ['/abs.png\t1', /train\.txt:1: absolute path/],
    ['../up.png\t1', /train\.txt:1: path '\.\.\/up\.png' escapes the image root/],
  ])('%j is refused, naming file and line', (text, want) => {
    expect(() => parseMultiLabelList(text, 'train.txt', 10)).toThrow(want);
  });
  it('multi-hot targets and per-class image counts', () => {
    expect(Array.from(multiHot([[0, 2], [1]], 3))).toEqual([1, 0, 1, 0, 1, 0]);
    expect(multiLabelCounts([[0, 2], [1], [2]], 3)).toEqual([1, 1, 2]);
    expect(() => multiHot([[3]], 3)).toThrow(/labels\[0\] holds 3, out of range for 3 classes/);
  });
});
