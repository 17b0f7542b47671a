/** Plain monospace tables for terminal output. */

export interface TableColumn {
  /** Property of each row shown in this column. */
  key: string;
  header: string;
  /** Default: 'right' when every present value of the column is a number, otherwise 'left'. */
  align?: 'left' | 'right';
  /** Cell text of a value; default: '-' for null / undefined, String(value) otherwise. */
  format?: (value: any) => string;
}

const defaultFormat = (value: unknown): string => (value == null ? '-' : String(value));

/**
 * Formats `rows` as a table: a header line, a separator of dashes, then one line per row, columns
 * padded to their widest cell and separated by two spaces (trailing spaces trimmed).
 */
export function formatTable(columns: readonly TableColumn[], rows: readonly Record<string, unknown>[]): string {
  const cols = columns.map((col) => {
    const values = rows.map((row) => row[col.key]);
    const format = col.format ?? defaultFormat;
    const cells = values.map((v) => format(v));
    const numeric = values.every((v) => v == null || typeof v === 'number' || typeof v === 'bigint');
    const align = col.align ?? (numeric && rows.length > 0 ? 'right' : 'left');
    const width = Math.max(col.header.length, ...cells.map((c) => c.length));
    return { col, cells, align, width };
  });
  const pad = (text: string, width: number, align: 'left' | 'right') =>
    align === 'right' ? text.padStart(width) : text.padEnd(width);
  const line = (cells: string[]) => cells.join('  ').trimEnd();
  return [
    line(cols.map((c) => pad(c.col.header, c.width, c.align))),
    line(cols.map((c) => '-'.repeat(c.width))),
    ...rows.map((_, r) => line(cols.map((c) => pad(c.cells[r], c.width, c.align)))),
  ].join('\n');
}

/** A fraction as a percentage with `digits` decimals ('12.34%'); NaN, null and undefined give '-'. */
export function formatPercent(x: number | null | undefined, digits = 2): string {
  return x == null || Number.isNaN(x) ? '-' : `${(x * 100).toFixed(digits)}%`;
}
