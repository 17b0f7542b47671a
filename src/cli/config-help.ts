/**
 * Every config key with what it accepts and its value, from the zod schema (via its JSON Schema), for
 * `btm config` and the help of the commands that take config flags.
 */
import { z } from 'zod';
import { ConfigSchema, type Config } from '../config.js';
import { formatTable } from '../report/table.js';

type JsonSchema = {
  type?: string | string[];
  const?: unknown;
  enum?: unknown[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  pattern?: string;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  default?: unknown;
  minItems?: number;
};

let cached: JsonSchema | undefined;
function configJsonSchema(): JsonSchema {
  cached ??= z.toJSONSchema(ConfigSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  return cached;
}

const big = (v: number) => (Math.abs(v) >= 1e6 && Number.isInteger(Math.log2(v)) ? `2^${Math.log2(v)}` : String(v));

/** What a schema node accepts, in one short line: `int 0..100000`, `cosine|step|constant`, `{type: las, epsHead 0..1}`. */
export function describeSchema(s: JsonSchema): string {
  const alts = s.anyOf ?? s.oneOf;
  if (alts) return alts.map(describeSchema).join(' | ');
  if (s.const !== undefined) return String(s.const);
  if (s.enum) return s.enum.map(String).join('|');
  const type = Array.isArray(s.type) ? s.type.join('|') : s.type;
  if (type === 'integer' || type === 'number') {
    const lo = s.minimum ?? (s.exclusiveMinimum !== undefined ? `>${s.exclusiveMinimum}` : undefined);
    const hi = s.maximum ?? (s.exclusiveMaximum !== undefined ? `<${s.exclusiveMaximum}` : undefined);
    const name = type === 'integer' ? 'int' : 'number';
    if (typeof lo === 'number' && typeof hi === 'number') return `${name} ${big(lo)}..${big(hi)}`;
    if (lo !== undefined && hi === undefined) return `${name} ${typeof lo === 'number' ? `>=${big(lo)}` : lo}`;
    if (hi !== undefined && lo === undefined) return `${name} ${typeof hi === 'number' ? `<=${big(hi)}` : hi}`;
    return name;
  }
  if (type === 'string') return s.pattern ? `string /${s.pattern}/` : 'string';
  if (type === 'boolean') return 'true|false';
  if (type === 'array') return `[${s.items ? describeSchema(s.items) : ''}, ...]${s.minItems ? ` (>= ${s.minItems})` : ''}`;
  if (type === 'object' && s.properties) {
    const { type: tag, ...rest } = s.properties;
    if (tag?.const !== undefined) {
      // a member of a discriminated union: las(epsHead 0..1, epsTail 0..1)
      const fields = Object.entries(rest).map(([k, v]) => `${k} ${describeSchema(v).replace(/^(int|number) /, '')}`);
      return fields.length ? `${String(tag.const)}(${fields.join(', ')})` : String(tag.const);
    }
    const fields = Object.entries(s.properties).map(([k, v]) => (v.const !== undefined ? `${k}: ${String(v.const)}` : `${k} ${describeSchema(v)}`));
    return `{${fields.join(', ')}}`;
  }
  return type ?? 'any';
}

export interface ConfigKey {
  key: string;
  accepts: string;
  /** The schema's own default (absent where the preset must give one). */
  schemaDefault?: unknown;
  /** The value in the given config. */
  value: unknown;
}

/** Leaves of the config schema (a loss or a normalisation is one key: its fields depend on its type). */
export function configKeys(config?: Config): ConfigKey[] {
  const out: ConfigKey[] = [];
  const walk = (s: JsonSchema, path: string[], value: unknown) => {
    const whole = path.at(-1) === 'loss' || path.at(-1) === 'normalize';
    if (!whole && s.properties && !s.anyOf && !s.oneOf) {
      for (const [k, child] of Object.entries(s.properties)) {
        walk(child, [...path, k], value && typeof value === 'object' ? (value as Record<string, unknown>)[k] : undefined);
      }
      return;
    }
    out.push({ key: path.join('.'), accepts: describeSchema(s), schemaDefault: s.default, value });
  };
  walk(configJsonSchema(), [], config);
  return out;
}

const show = (v: unknown) => (v === undefined ? '-' : typeof v === 'string' ? v : JSON.stringify(v));

/**
 * A table of the keys (those `keep` selects): flag, what it accepts, and its value in `config` (the
 * default of a preset, or the effective value) or, without a config, the schema's default.
 */
export function formatConfigKeys(config: Config | undefined, keep: (key: string) => boolean = () => true, valueHeader = 'default'): string {
  const rows = configKeys(config).filter((k) => keep(k.key)).map((k) => ({
    key: `--${k.key}`, accepts: k.accepts, value: show(config ? k.value : k.schemaDefault),
  }));
  return formatTable([
    { key: 'key', header: 'flag', align: 'left' },
    { key: 'accepts', header: 'accepts', align: 'left' },
    { key: 'value', header: valueHeader, align: 'left' },
  ], rows);
}
