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

/** The columns of multi-label rows (ResultRow.metric 'ap'): the same fields, named for per-class AP. */
export const AP_ROW_COLUMNS: TableColumn[] = [
  { key: 'label', header: 'model', align: 'left' },
  { key: 'arithmeticMean', header: 'mAP', format: pct },
  { key: 'harmonicMean', header: 'H-AP', format: pct },
  { key: 'geometricMean', header: 'G-AP', format: pct },
  { key: 'lowestRecall', header: 'min AP', format: pct },
  { key: 'many', header: 'many mAP', format: pct },
  { key: 'medium', header: 'medium', format: pct },
  { key: 'few', header: 'few', format: pct },
  { key: 'accuracy', header: 'top-1 hit', format: pct },
  { key: 'trainSeconds', header: 'train s', format: (v) => (typeof v === 'number' ? v.toFixed(1) : '-') },
];

export function formatRows(rows: readonly ResultRow[]): string {
  const ap = rows.length > 0 && rows.every((r) => r.metric === 'ap');
  return formatTable(ap ? AP_ROW_COLUMNS : ROW_COLUMNS, rows as unknown as Record<string, unknown>[]);
}

/** Short images/s: 850, 12.3k. */
function formatRate(v: number): string {
  if (!Number.isFinite(v)) return '?';
  return v >= 10_000 ? `${(v / 1000).toFixed(0)}k` : v >= 1000 ? `${(v / 1000).toFixed(1)}k` : v.toFixed(0);
}

export interface ProgressOptions {
  /** Without a TTY, also print a line inside an epoch when this many seconds passed since the last (default 30). */
  intervalSeconds?: number;
  /** Clock in ms (tests). */
  now?: () => number;
  /** Width to fit on a TTY when the stream does not say (default 80). */
  columns?: number;
}

/**
 * Writes progress to a stream. On a TTY: a redrawn one-line bar (step, epoch within the step, rate,
 * ETA, loss) that fits the terminal (at most 80 columns) and is cleared before anything else is
 * printed, an evaluation included. Not on a TTY (a log file, CI): a line per finished epoch with
 * stage, epoch/total, loss, accuracy, lr, images/s and ETA, and a line every `intervalSeconds` inside
 * long epochs. Step lines and result rows are printed in both cases.
 */
export class ProgressPrinter {
  private barShown = false;
  private lastDraw = 0;
  private lastLine = 0;
  private readonly interval: number;
  private readonly now: () => number;

  constructor(
    private readonly out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number },
    private readonly quiet: boolean,
    private readonly opts: ProgressOptions = {},
  ) {
    this.interval = (opts.intervalSeconds ?? 30) * 1000;
    this.now = opts.now ?? Date.now;
    this.lastLine = this.now();
  }

  private get tty(): boolean {
    return !this.quiet && this.out.isTTY === true;
  }

  private get width(): number {
    return Math.min(80, this.out.columns ?? this.opts.columns ?? 80);
  }

  private clearBar(): void {
    if (this.barShown) this.out.write('\r\x1b[2K');
    this.barShown = false;
  }

  private line(text: string): void {
    if (this.quiet) return;
    this.clearBar();
    this.out.write(text + '\n');
    this.lastLine = this.now();
  }

  /** Clears a bar left on the terminal (before the final output or an error). */
  finish(): void {
    this.clearBar();
  }

  private bar(text: string): void {
    this.out.write('\r\x1b[2K' + text.slice(0, this.width - 1));
    this.barShown = true;
  }

  handle = (e: ProgressEvent): void => {
    switch (e.type) {
      case 'step':
        return this.line(`== ${e.message}`);
      case 'log':
        return this.line(e.message);
      case 'row': {
        const r = e.row;
        if (r.metric === 'ap') {
          return this.line(`   -> ${r.label}: mAP ${pct(r.arithmeticMean)}  H-AP ${pct(r.harmonicMean)}  G-AP ${pct(r.geometricMean)}  min AP ${pct(r.lowestRecall)}`);
        }
        const line = (m: typeof r | NonNullable<typeof r.val>) => `acc ${pct(m.accuracy)}  H-mean ${pct(m.harmonicMean)}  G-mean ${pct(m.geometricMean)}  lowest ${pct(m.lowestRecall)}`;
        return this.line(`   -> ${r.label}: ${line(r)}${r.val ? `  | validation: ${line(r.val)}` : ''}`);
      }
      case 'eval':
        if (this.tty) this.bar(`${e.step}: evaluating on the test set...`);
        return;
      case 'epoch': {
        if (this.quiet || this.tty) return;
        return this.line(`${e.step} epoch ${e.epoch}/${e.epochs}: loss ${e.loss.toFixed(4)} acc ${(e.acc * 100).toFixed(1)}% ` +
          `lr ${e.lr.toPrecision(3)} ${formatRate(e.imagesPerSec)} img/s ETA ${formatDuration(e.etaSeconds)}` +
          (e.step === e.stage ? '' : ` (${e.stage})`));
      }
      case 'train': {
        if (this.quiet) return;
        const now = this.now();
        if (!this.tty) {
          // long epochs: a line every interval, so a log never goes quiet for long
          if (now - this.lastLine >= this.interval && e.done < e.total) {
            this.line(`${e.step} epoch ${e.epoch}/${e.epochs}: ${Math.floor((e.done / e.total) * 100)}% of the step, loss ${e.loss.toFixed(4)} ` +
              `${formatRate(e.imagesPerSec)} img/s ETA ${formatDuration(e.etaSeconds)}`);
          }
          return;
        }
        if (now - this.lastDraw < 100 && e.done < e.total) return;
        this.lastDraw = now;
        const frac = e.total > 0 ? e.done / e.total : 1;
        const barWidth = 12;
        const bar = '#'.repeat(Math.round(frac * barWidth)).padEnd(barWidth, '.');
        // at most 79 columns: "btm-12 ep 30/30 [############] 100% 12.3k img/s ETA 10h05m loss 12.345"
        this.bar(`${e.step} ep ${e.epoch}/${e.epochs} [${bar}] ${(frac * 100).toFixed(0)}% ${formatRate(e.imagesPerSec)} img/s ` +
          `ETA ${formatDuration(e.etaSeconds)} loss ${e.loss.toFixed(3)}`);
      }
    }
  };
}
