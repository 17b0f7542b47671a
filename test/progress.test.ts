// Progress output: a live bar on a TTY (fits 80 columns, cleared before anything else), a line per
// epoch (and every N seconds) without one.
import { describe, expect, it } from 'vitest';
import { ProgressPrinter } from '../src/cli/progress.js';
import type { ProgressEvent } from '../src/pipeline/context.js';

class FakeStream {
  text = '';
  constructor(readonly isTTY: boolean, readonly columns?: number) {}
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}

const train = (over: Partial<Extract<ProgressEvent, { type: 'train' }>> = {}): ProgressEvent => ({
  type: 'train', stage: 'btm', step: 'btm-12', epoch: 30, epochs: 30, done: 100, total: 100, loss: 123.456789,
  acc: 0.5, imagesPerSec: 12345.6, etaSeconds: 36_300, ...over,
});
const epoch = (over: Partial<Extract<ProgressEvent, { type: 'epoch' }>> = {}): ProgressEvent => ({
  type: 'epoch', stage: 'pretrain', step: 'pretrain', epoch: 3, epochs: 25, lr: 0.0951, loss: 0.51234, acc: 0.452,
  imagesPerSec: 1234, seconds: 4, etaSeconds: 185, ...over,
});

/** What a terminal shows: each \r starts the line again, \x1b[2K clears it. */
function screen(text: string): string[] {
  const lines: string[] = [''];
  for (const part of text.split(/(\r|\n|\x1b\[2K)/)) {
    if (part === '\n') lines.push('');
    else if (part === '\r' || part === '\x1b[2K') lines[lines.length - 1] = '';
    else lines[lines.length - 1] += part;
  }
  return lines;
}

describe('ProgressPrinter on a TTY', () => {
  it('draws a bar with step, epoch within the step, rate, ETA and loss that fits 80 columns, even with wide values', () => {
    for (const columns of [undefined, 80, 200, 60]) {
      const out = new FakeStream(true, columns);
      const p = new ProgressPrinter(out as never, false);
      p.handle(train());
      const shown = screen(out.text).at(-1)!;
      // the whole text fits 80 columns; a narrower terminal cuts it
      if ((columns ?? 80) >= 80) expect(shown).toMatch(/^btm-12 ep 30\/30 \[#+\] 100% 12k img\/s ETA 10h05m loss 123\.457$/);
      else expect(shown).toMatch(/^btm-12 ep 30\/30 \[#+\] 100%/);
      expect(shown.length).toBeLessThan(Math.min(80, columns ?? 80));
    }
  });

  it('replaces the bar while the test set is evaluated, and clears it before any line', () => {
    const out = new FakeStream(true, 120);
    const p = new ProgressPrinter(out as never, false);
    p.handle(train());
    p.handle({ type: 'eval', step: 'pretrain', stage: 'pretrain', label: 'pre-train' });
    expect(screen(out.text).at(-1)).toBe('pretrain: evaluating on the test set...');
    p.handle({ type: 'log', message: 'hello' });
    expect(screen(out.text).slice(-2)).toEqual(['hello', '']);
    // no epoch lines on a TTY (the bar shows the epoch)
    p.handle(epoch());
    expect(out.text).not.toMatch(/pretrain epoch 3\/25/);
    p.handle(train());
    p.finish();
    expect(screen(out.text).at(-1)).toBe('');
  });
});

describe('ProgressPrinter without a TTY (log files, CI)', () => {
  it('prints one line per finished epoch: stage, epoch/total, loss, accuracy, lr, images/s, ETA; no bar', () => {
    const out = new FakeStream(false);
    const p = new ProgressPrinter(out as never, false);
    for (let e = 1; e <= 3; e++) {
      p.handle(train({ stage: 'pretrain', step: 'pretrain', epoch: e, epochs: 3, done: e * 10, total: 30 }));
      p.handle(epoch({ epoch: e, epochs: 3 }));
    }
    p.handle(epoch({ stage: 'btm', step: 'btm-2', epoch: 1, epochs: 30 }));
    const lines = out.text.trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toBe('pretrain epoch 1/3: loss 0.5123 acc 45.2% lr 0.0951 1.2k img/s ETA 3m05s');
    expect(lines[3]).toMatch(/^btm-2 epoch 1\/30: .* \(btm\)$/);
    expect(out.text).not.toMatch(/[\r\x1b]/);
  });

  it('inside a long epoch, prints a line every interval', () => {
    let now = 0;
    const out = new FakeStream(false);
    const p = new ProgressPrinter(out as never, false, { intervalSeconds: 30, now: () => now });
    for (let t = 0; t <= 100; t += 5) {
      now = t * 1000;
      p.handle(train({ stage: 'pretrain', step: 'pretrain', epoch: 1, epochs: 2, done: t, total: 1000 }));
    }
    const lines = out.text.trim().split('\n');
    expect(lines).toHaveLength(3); // at 30, 60 and 90 s
    expect(lines[0]).toMatch(/^pretrain epoch 1\/2: 3% of the step, loss 123\.4568 12k img\/s ETA/);
  });

  it('--quiet / --json print nothing', () => {
    for (const tty of [true, false]) {
      const out = new FakeStream(tty);
      const p = new ProgressPrinter(out as never, true);
      p.handle(train());
      p.handle(epoch());
      p.handle({ type: 'step', step: 'x', stage: 'x', message: 'm' });
      expect(out.text).toBe('');
    }
  });
});
