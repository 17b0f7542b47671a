/**
 * Minimal PNG output without dependencies: an 8-bit RGB/RGBA encoder (filter 0 on every row,
 * zlib from node:zlib) and a tiny RGBA raster with rectangles, lines and a built-in bitmap font.
 */
import { deflateSync } from 'node:zlib';

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32 (ISO 3309 / PNG) of `bytes`. */
function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** One PNG chunk: length, type, data, CRC over type + data. */
function chunk(type: string, data: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/**
 * Encodes 8-bit pixels, row-major, as a PNG. The colour type follows from the buffer length:
 * width*height*4 bytes is RGBA, width*height*3 is RGB; anything else throws a RangeError.
 */
export function encodePng(width: number, height: number, rgba: Uint8Array): Buffer {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`PNG size must be positive integers, got ${width}x${height}`);
  }
  const channels = rgba.length / (width * height);
  if (channels !== 3 && channels !== 4) {
    throw new RangeError(
      `pixel buffer has ${rgba.length} bytes; expected ${width * height * 4} (RGBA) or ${width * height * 3} (RGB) for ${width}x${height}`,
    );
  }
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = channels === 4 ? 6 : 2; // colour type: truecolour with / without alpha
  // compression, filter and interlace methods: all 0

  const stride = width * channels;
  const raw = Buffer.alloc(height * (stride + 1)); // each row: filter byte 0, then the pixels
  for (let y = 0; y < height; y++) raw.set(rgba.subarray(y * stride, (y + 1) * stride), y * (stride + 1) + 1);

  return Buffer.concat([
    SIGNATURE,
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

/** A CSS-style hex colour: '#rgb', '#rrggbb' or '#rrggbbaa'. */
export type Color = string;

/** [r, g, b, a] bytes of a hex colour; throws a TypeError on anything else. */
export function parseColor(color: Color): [number, number, number, number] {
  let hex = /^#([0-9a-f]{3}|[0-9a-f]{6}|[0-9a-f]{8})$/i.exec(color)?.[1];
  if (hex === undefined) throw new TypeError(`invalid colour ${JSON.stringify(color)}, expected #rgb, #rrggbb or #rrggbbaa`);
  if (hex.length === 3) hex = [...hex].map((h) => h + h).join('');
  if (hex.length === 6) hex += 'ff';
  return [0, 2, 4, 6].map((i) => parseInt(hex.slice(i, i + 2), 16)) as [number, number, number, number];
}

/*
 * Bitmap font: 5 columns x 8 rows per glyph (rows 0-6 cap height, row 7 descenders). Each glyph is
 * one base-32 digit per row (bit 4 = leftmost column), trailing empty rows dropped. Characters
 * missing from FONT_CHARS are drawn as '?'.
 */
const FONT_CHARS = " 0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz.,-_%()/:=+#><?![]*&';|";
const FONT_DATA =
  '0 ehjlphe 4c4444e eh1248v v2421he 26aiv22 vgu11he 68guhhe v124888 ehhehhe ehhf12c ' +
  'ehhvhhh uhhuhhu ehggghe sihhhis vgguggv vgguggg ehgnhhf hhhvhhh e44444e 72222ic hikokih ' +
  'ggggggv hrllhhh hhpljhh ehhhhhe uhhuggg ehhhlid uhhukih fgge11u v444444 hhhhhhe hhhhha4 ' +
  'hhhllla hha4ahh hha4444 v1248gv ' +
  '00e1fhf ggmphhu 00egghe 11djhhf 00ehvge 698s888 00fhhf1e ggmphhh 40c444e 206222ic ggikoki ' +
  'c44444e 00qllhh 00mphhh 00ehhhe 00uhhugg 00fhhf11 00mpggg 00fge1u 88s8896 00hhhjd 00hhha4 ' +
  '00hhlla 00ha4ah 00hhhf1e 00v248v ' +
  '00000cc 00000c48 000e 0000000v op248j3 2488842 8422248 01248g 0cc0cc 00v0v 044v44 aavavaa ' +
  '8421248 248g842 eh12404 4444404 e88888e e22222e 04lel4 cik8lid 448 0cc0cc48 44444444';

const GLYPHS = new Map<string, number[]>(
  FONT_DATA.split(' ').map((code, i) => [FONT_CHARS[i], Array.from(code.padEnd(8, '0'), (d) => parseInt(d, 32))]),
);

/** Glyph cell of the built-in font at scale 1: 5x8 pixels plus 1 pixel of spacing. */
export const FONT = { width: 5, height: 8, capHeight: 7, advance: 6 } as const;

/** An RGBA canvas (origin top-left) that draws with alpha blending and encodes to PNG. */
export class Raster {
  readonly data: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
    background: Color = '#ffffff',
  ) {
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
      throw new RangeError(`raster size must be positive integers, got ${width}x${height}`);
    }
    this.data = new Uint8Array(width * height * 4);
    const [r, g, b, a] = parseColor(background);
    for (let i = 0; i < this.data.length; i += 4) this.data.set([r, g, b, a], i);
  }

  /** Blends `rgba` over pixel (x, y); pixels outside the canvas are ignored. */
  private blend(x: number, y: number, [r, g, b, a]: readonly number[]): void {
    if (x < 0 || y < 0 || x >= this.width || y >= this.height) return;
    const i = (y * this.width + x) * 4;
    const d = this.data;
    if (a === 255) {
      d[i] = r; d[i + 1] = g; d[i + 2] = b; d[i + 3] = 255;
      return;
    }
    const s = a / 255;
    const outA = s + (d[i + 3] / 255) * (1 - s);
    if (outA === 0) return;
    for (const [k, v] of [r, g, b].entries()) {
      d[i + k] = Math.round((v * s + d[i + k] * (d[i + 3] / 255) * (1 - s)) / outA);
    }
    d[i + 3] = Math.round(outA * 255);
  }

  /** Fills the pixels of [x, x+w) x [y, y+h); fractional edges are rounded. */
  fillRect(x: number, y: number, w: number, h: number, color: Color): void {
    const rgba = parseColor(color);
    const x0 = Math.max(0, Math.round(x)), x1 = Math.min(this.width, Math.round(x + w));
    const y0 = Math.max(0, Math.round(y)), y1 = Math.min(this.height, Math.round(y + h));
    for (let py = y0; py < y1; py++) for (let px = x0; px < x1; px++) this.blend(px, py, rgba);
  }

  /** Bresenham line from (x0, y0) to (x1, y1), both ends included, `thickness` pixels wide. */
  line(x0: number, y0: number, x1: number, y1: number, color: Color, thickness = 1): void {
    const rgba = parseColor(color);
    let x = Math.round(x0), y = Math.round(y0);
    const xe = Math.round(x1), ye = Math.round(y1);
    const dx = Math.abs(xe - x), dy = -Math.abs(ye - y);
    const sx = x < xe ? 1 : -1, sy = y < ye ? 1 : -1;
    const t = Math.max(1, Math.round(thickness)), off = Math.floor((t - 1) / 2);
    let err = dx + dy;
    for (;;) {
      for (let j = 0; j < t; j++) for (let i = 0; i < t; i++) this.blend(x - off + i, y - off + j, rgba);
      if (x === xe && y === ye) break;
      const e2 = 2 * err;
      if (e2 >= dy) { err += dy; x += sx; }
      if (e2 <= dx) { err += dx; y += sy; }
    }
  }

  /**
   * Draws `str` in the built-in font with its top-left corner at (x, y), each font pixel a
   * `scale` x `scale` block; a character advances 6*scale pixels. `vertical` rotates the text
   * 90 degrees counter-clockwise about (x, y), so it reads bottom to top.
   */
  text(x: number, y: number, str: string, color: Color, scale = 1, vertical = false): void {
    const rgba = parseColor(color);
    const s = Math.max(1, Math.round(scale));
    x = Math.round(x);
    y = Math.round(y);
    [...str].forEach((ch, n) => {
      const rows = GLYPHS.get(ch) ?? GLYPHS.get('?')!;
      rows.forEach((bits, r) => {
        for (let c = 0; c < FONT.width; c++) {
          if (!(bits & (16 >> c))) continue;
          const along = (n * FONT.advance + c) * s, across = r * s;
          for (let j = 0; j < s; j++) {
            for (let i = 0; i < s; i++) {
              if (vertical) this.blend(x + across + j, y - along - i - 1, rgba);
              else this.blend(x + along + i, y + across + j, rgba);
            }
          }
        }
      });
    });
  }

  /** This raster as an RGBA PNG. */
  toPng(): Buffer {
    return encodePng(this.width, this.height, this.data);
  }
}
