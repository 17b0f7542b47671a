/** Terminal output of a run: a one-line progress bar with rate and ETA (TTY only) and result rows. */
import type { ProgressEvent } from '../pipeline/context.js';
import type { ResultRow } from '../pipeline/run-state.js';
import { formatPercent, formatTable, type TableColumn } from '../report/table.js';

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(r).padStart(2, '0')}s` : `${r}s`;
}

const pct = (v: unknown) => formatPercent(v as number | null);

export const ROW_COLUMNS: TableColumn[] = [
  { key: 'label', header: 'model', align: 'left' },
  { key: 'accuracy', header: 'acc', format: pct },
  { key: 'harmonicMean', header: 'H-mean', format: pct },
  { key: 'geometricMean', header: 'G-mean', format: pct },
  { key: 'lowestRecall', header: 'lowest', format: pct },
  { key: 'many', header: 'many', format: pct },
  { key: 'medium', header: 'medium', format: pct },
  { key: 'few', header: 'few', format: pct },
  { key: 'trainSeconds', header: 'train s', format: (v) => (typeof v === 'number' ? v.toFixed(1) : '-') },
];

export function formatRows(rows: readonly ResultRow[]): string {
  return formatTable(ROW_COLUMNS, rows as unknown as Record<string, unknown>[]);
}

/** Writes progress to a stream: a redrawn bar on a TTY, step lines and result rows always. */
export class ProgressPrinter {
  private barShown = false;
  private lastDraw = 0;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly quiet: boolean,
  ) {}

  private get tty(): boolean {
    return !this.quiet && this.out.isTTY === true;
  }

  private line(text: string): void {
    if (this.quiet) return;
    if (this.barShown) this.out.write('\r\x1b[2K');
    this.barShown = false;
    this.out.write(text + '\n');
  }

  handle = (e: ProgressEvent): void => {
    switch (e.type) {
      case 'step':
        return this.line(`== ${e.message}`);
      case 'log':
        return this.line(e.message);
      case 'row': {
        const r = e.row;
        return this.line(`   -> ${r.label}: acc ${pct(r.accuracy)}  H-mean ${pct(r.harmonicMean)}  G-mean ${pct(r.geometricMean)}  lowest ${pct(r.lowestRecall)}`);
      }
      case 'train': {
        if (!this.tty) return;
        const now = Date.now();
        if (now - this.lastDraw < 100 && e.done < e.total) return;
        this.lastDraw = now;
        const width = 24;
        const frac = e.total > 0 ? e.done / e.total : 1;
        const bar = '#'.repeat(Math.round(frac * width)).padEnd(width, '.');
        const text = `${e.step} epoch ${e.epoch}/${e.epochs} [${bar}] ${(frac * 100).toFixed(0)}% ` +
          `${e.imagesPerSec.toFixed(0)} img/s ETA ${formatDuration(e.etaSeconds)} loss ${e.loss.toFixed(3)} acc ${(e.acc * 100).toFixed(1)}%`;
        this.out.write('\r\x1b[2K' + text.slice(0, (this.out.columns ?? 120) - 1));
        this.barShown = true;
      }
    }
  };
}
