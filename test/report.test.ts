import { crc32, inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { recallChartPng, recallChartSvg, type RecallChartOptions } from '../src/report/chart.js';
import { encodePng, Raster } from '../src/report/png.js';
import { formatPercent, formatTable } from '../src/report/table.js';

/** Decodes the PNGs written by encodePng (8-bit, filter 0), checking structure and CRCs. */
function decodePng(png: Buffer) {
  expect([...png.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const chunks: { type: string; data: Buffer }[] = [];
  for (let off = 8; off < png.length; ) {
    const len = png.readUInt32BE(off);
    const type = png.toString('latin1', off + 4, off + 8);
    const data = png.subarray(off + 8, off + 8 + len);
    expect(png.readUInt32BE(off + 8 + len), `CRC of ${type}`).toBe(crc32(png.subarray(off + 4, off + 8 + len)));
    chunks.push({ type, data });
    off += 12 + len;
  }
  expect(chunks.map((c) => c.type)).toEqual(['IHDR', 'IDAT', 'IEND']);
  const ihdr = chunks[0].data;
  const width = ihdr.readUInt32BE(0), height = ihdr.readUInt32BE(4);
  expect(ihdr[8]).toBe(8);
  const channels = ihdr[9] === 6 ? 4 : 3;
  const raw = inflateSync(chunks[1].data);
  expect(raw.length).toBe(height * (1 + width * channels));
  for (let y = 0; y < height; y++) expect(raw[y * (1 + width * channels)]).toBe(0);
  const pixel = (x: number, y: number) => {
    const i = y * (1 + width * channels) + 1 + x * channels;
    return [...raw.subarray(i, i + channels)];
  };
  return { width, height, colorType: ihdr[9], pixel };
}

describe('encodePng', () => {
  it('writes a valid RGBA PNG whose pixels decode back', () => {
    const w = 3, h = 2;
    const rgba = new Uint8Array(w * h * 4);
    rgba.set([255, 0, 0, 255], 0); // (0, 0) red
    rgba.set([10, 20, 30, 128], (1 * w + 2) * 4); // (2, 1)
    const png = decodePng(encodePng(w, h, rgba));
    expect([png.width, png.height, png.colorType]).toEqual([3, 2, 6]);
    expect(png.pixel(0, 0)).toEqual([255, 0, 0, 255]);
    expect(png.pixel(2, 1)).toEqual([10, 20, 30, 128]);
    expect(png.pixel(1, 0)).toEqual([0, 0, 0, 0]);
  });

  it('writes RGB when given 3 bytes per pixel and rejects other sizes', () => {
    const png = decodePng(encodePng(2, 2, new Uint8Array(12).fill(7)));
    expect(png.colorType).toBe(2);
    expect(png.pixel(1, 1)).toEqual([7, 7, 7]);
    expect(() => encodePng(2, 2, new Uint8Array(10))).toThrow(/expected 16 \(RGBA\) or 12 \(RGB\)/);
    expect(() => encodePng(0, 2, new Uint8Array(0))).toThrow(RangeError);
  });
});

describe('Raster', () => {
  it('fills rectangles, draws lines and text, blends alpha', () => {
    const r = new Raster(40, 20, '#ffffff');
    r.fillRect(2, 3, 4, 5, '#00ff00');
    r.line(0, 19, 39, 19, '#0000ff');
    r.fillRect(30, 0, 5, 5, '#ff000080');
    r.text(10, 2, 'H', '#000000');
    const png = decodePng(r.toPng());
    expect([png.width, png.height]).toEqual([40, 20]);
    expect(png.pixel(2, 3)).toEqual([0, 255, 0, 255]);
    expect(png.pixel(5, 7)).toEqual([0, 255, 0, 255]);
    expect(png.pixel(6, 7)).toEqual([255, 255, 255, 255]);
    expect(png.pixel(0, 19)).toEqual([0, 0, 255, 255]);
    expect(png.pixel(39, 19)).toEqual([0, 0, 255, 255]);
    expect(png.pixel(32, 2)).toEqual([255, 127, 127, 255]);
    // 'H': both columns of the glyph on every cap row, the middle row filled.
    expect(png.pixel(10, 2)).toEqual([0, 0, 0, 255]);
    expect(png.pixel(14, 8)).toEqual([0, 0, 0, 255]);
    expect(png.pixel(12, 5)).toEqual([0, 0, 0, 255]);
    expect(png.pixel(12, 4)).toEqual([255, 255, 255, 255]);
    expect(() => r.fillRect(0, 0, 1, 1, 'red')).toThrow(/invalid colour/);
  });
});

const names = ['cat', 'dog', 'ant', 'bee'];
const baseOpts = (): RecallChartOptions => ({
  title: 'Recall <before> & after',
  series: [
    { label: 'before BTM', recall: [1, 0.5, 0, 0.25] },
    { label: 'after BTM', recall: [0.9, 0.6, 0.3, NaN] },
  ],
  classNames: names,
  trainCounts: [10, 500, 5, 50],
});
const count = (s: string, sub: string) => s.split(sub).length - 1;

describe('recallChartSvg', () => {
  it('draws one bar per present class per series, a legend and an escaped title', () => {
    const svg = recallChartSvg(baseOpts());
    expect(svg.startsWith('<svg ')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(count(svg, '<text')).toBe(count(svg, '</text>'));
    expect(count(svg, 'class="bar"')).toBe(4 + 3); // the NaN recall has no bar
    expect(svg).toContain('Recall &lt;before&gt; &amp; after');
    expect(svg).not.toContain('<before>');
    expect(svg).toMatch(/before BTM\s+mean 43\.75%\s+H-mean 0\.40%\s+G-mean 10\.57%/);
    expect(svg).toMatch(/after BTM\s+mean 60\.00%/);
    expect(svg).toContain('>Many (1)<');
    expect(svg).toContain('>Medium (1)<');
    expect(svg).toContain('>Few (2)<');
  });

  it('sorts classes head to tail by training count', () => {
    const svg = recallChartSvg(baseOpts());
    const labels = [...svg.matchAll(/class="class-label"[^>]*>([^<]*)</g)].map((m) => m[1]);
    expect(labels).toEqual(['dog', 'bee', 'cat', 'ant']);
  });

  it('switches to lines with one point per class per series above 40 classes', () => {
    const n = 100;
    const recall = Array.from({ length: n }, (_, i) => i / (n - 1));
    const svg = recallChartSvg({ title: 't', series: [{ label: 'a', recall }, { label: 'b', recall: recall.map((r) => r / 2) }] });
    expect(count(svg, 'class="point"')).toBe(2 * n);
    expect(count(svg, 'class="bar"')).toBe(0);
  });
});

describe('recallChartPng', () => {
  it('renders at the requested size', () => {
    expect(decodePng(recallChartPng(baseOpts()))).toMatchObject({ width: 960, height: 540 });
    expect(decodePng(recallChartPng({ ...baseOpts(), width: 640, height: 400 }))).toMatchObject({ width: 640, height: 400 });
  });
});

describe('recall chart validation', () => {
  const withSeries = (series: RecallChartOptions['series']) => ({ ...baseOpts(), series });
  it('names the offending series', () => {
    expect(() => recallChartSvg(withSeries([{ label: 'A', recall: [1, 1, 1, 1] }, { label: 'B', recall: [1, 1] }]))).toThrow(
      /series "B" has 2 recall values, expected 4 as in series "A"/,
    );
    expect(() => recallChartPng(withSeries([{ label: 'A', recall: [1, 1.5, 1, 1] }]))).toThrow(/series "A": recall\[1\] = 1.5/);
    expect(() => recallChartSvg(withSeries([{ label: 'A', recall: [1, -0.1, 1, 1] }]))).toThrow(/series "A"/);
  });
  it('rejects empty series, mismatched names or counts, and a too small chart', () => {
    expect(() => recallChartSvg(withSeries([]))).toThrow(/at least one series/);
    expect(() => recallChartSvg(withSeries([{ label: 'A', recall: [] }]))).toThrow(/series "A" has no recall values/);
    expect(() => recallChartSvg({ ...baseOpts(), classNames: ['x'] })).toThrow(/classNames has 1 entries, expected 4/);
    expect(() => recallChartSvg({ ...baseOpts(), trainCounts: [1, 2] })).toThrow(/trainCounts has 2 entries/);
    expect(() => recallChartSvg({ ...baseOpts(), width: 50, height: 50 })).toThrow(/too small/);
  });
});

describe('formatTable / formatPercent', () => {
  it('aligns text left and numbers right under a separator', () => {
    const table = formatTable(
      [
        { key: 'method', header: 'Method' },
        { key: 'h', header: 'H-mean', format: formatPercent },
        { key: 'n', header: 'N' },
      ],
      [
        { method: 'MiSLAS', h: 0.0147, n: 10 },
        { method: 'MiSLAS + BTM', h: 0.2656, n: 100 },
        { method: 'x', h: NaN },
      ],
    );
    expect(table).toBe(
      [
        'Method        H-mean    N',
        '------------  ------  ---',
        'MiSLAS         1.47%   10',
        'MiSLAS + BTM  26.56%  100',
        'x                  -    -',
      ].join('\n'),
    );
  });
  it('honours an explicit alignment', () => {
    expect(formatTable([{ key: 'a', header: 'A', align: 'right' }], [{ a: 'xyz' }])).toBe('  A\n---\nxyz');
  });
  it('formats percentages', () => {
    expect(formatPercent(0.12345)).toBe('12.35%');
    expect(formatPercent(1, 0)).toBe('100%');
    expect(formatPercent(NaN)).toBe('-');
    expect(formatPercent(undefined)).toBe('-');
  });
});
