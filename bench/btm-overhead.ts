/**
 * BTM overhead: wall time of the btm stage (fine-tunes, merge, their evaluations) as a fraction of the
 * pretrain stage, read from a finished `btm run` (results.json: `timings` = seconds per step, keyed
 * 'pretrain', 'pretrain:eval', 'btm-0', 'btm-0:eval', ..., 'btm-merge', 'btm-merge:eval', ...). Nothing is
 * estimated: without such a file the figure is reported as not measured.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig } from '../src/config.js';
import { presetConfig } from '../src/presets.js';

/** The settings that decide the stages' work, compared with the default preset (btm, size cpu). */
function workOf(c: any): string {
  return JSON.stringify([c?.pipeline, c?.data?.dataset, c?.model?.arch, c?.pretrain?.epochs, c?.btm?.epochs, c?.btm?.numSubsets, c?.btm?.perClass]);
}
const DEFAULT_WORK = workOf(parseConfig(presetConfig('btm', 'cpu')));

export function btmOverhead(runsDirs: string[]) {
  const found = runsDirs
    .filter((d) => existsSync(d))
    .flatMap((d) => readdirSync(d).map((name) => join(d, name, 'results.json')))
    .filter((f) => existsSync(f))
    .map((file) => {
      try {
        const r = JSON.parse(readFileSync(file, 'utf8'));
        const t: Record<string, number> = r?.timings ?? {};
        const sum = (prefix: string, evalOnly = false) =>
          Object.entries(t).filter(([k]) => k === prefix || k.startsWith(`${prefix}-`) || k.startsWith(`${prefix}:`))
            .filter(([k]) => !evalOnly || k.endsWith(':eval'))
            .reduce((a, [, v]) => a + (Number(v) || 0), 0);
        const isDefaultPreset = workOf(r?.config) === DEFAULT_WORK;
        return { file, mtime: statSync(file).mtimeMs, status: r?.status, name: r?.config?.name, isDefaultPreset, pretrainS: sum('pretrain'), btmS: sum('btm'), btmEvalS: sum('btm', true) };
      } catch {
        return undefined;
      }
    })
    .filter((r) => r !== undefined && r.status === 'complete' && r.pretrainS > 0 && r.btmS > 0)
    .sort((a, b) => Number(b!.isDefaultPreset) - Number(a!.isDefaultPreset) || b!.mtime - a!.mtime);
  const run = found[0];
  if (!run) return { measured: false as const, note: `not measured: run \`btm run\` first (no complete results.json with btm timings under ${runsDirs.join(', ')})` };
  const { file, name, isDefaultPreset, pretrainS, btmS, btmEvalS } = run;
  return { measured: true as const, file, name, isDefaultPreset, pretrainS, btmS, btmEvalS, fraction: btmS / pretrainS };
}
