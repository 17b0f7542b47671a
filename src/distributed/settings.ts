/**
 * Distributed settings of a run: torchrun's environment conventions (RANK, WORLD_SIZE, LOCAL_RANK,
 * MASTER_ADDR, MASTER_PORT), so that `btm run` starts under torchrun, a Slurm script, a Kubernetes job
 * or `btm run --nproc N` alike.
 */
import { z } from 'zod';

export const DistSettingsSchema = z.object({
  rank: z.number().int().min(0),
  worldSize: z.number().int().min(1),
  /** The rank on this machine (picks cuda:LOCAL_RANK when the device is 'cuda'). */
  localRank: z.number().int().min(0).default(0),
  /** Where rank 0 serves the rendezvous (TCPStore). */
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(1).max(65535).default(29500),
  /** 'gloo' (CPU; default on CPU) or 'nccl' (CUDA; default on CUDA where the addon has it). */
  backend: z.enum(['gloo', 'nccl']).optional(),
  /** How long the rendezvous and each collective wait for the other ranks, seconds (PyTorch's default: 1800). */
  timeoutSeconds: z.number().positive().max(7 * 24 * 3600).default(1800),
  /**
   * Data-parallel BatchNorm in train mode over the global batch (SyncBatchNorm; native default
   * defaults::kSyncBatchNorm) rather than each rank's part.
   */
  syncBatchNorm: z.boolean().default(true),
}).strict().refine((s) => s.rank < s.worldSize, { message: 'rank must be less than worldSize' });

export type DistSettings = z.infer<typeof DistSettingsSchema>;
export type DistSettingsInput = z.input<typeof DistSettingsSchema>;

/** Parses settings given to runPipeline; an Error naming the field otherwise. */
export function parseDistSettings(input: DistSettingsInput): DistSettings {
  const r = DistSettingsSchema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new Error(`distributed settings: ${issue.path.join('.') || '(settings)'}: ${issue.message}`);
  }
  return r.data;
}

function intVar(env: NodeJS.ProcessEnv, name: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const v = env[name];
  if (v === undefined || !/^\d+$/.test(v.trim()) || Number(v) < min || Number(v) > max) {
    throw new Error(`environment: ${name}=${v === undefined ? '(unset)' : `'${v}'`} must be an integer in [${min}, ${max}] ` +
      '(torchrun conventions: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT)');
  }
  return Number(v);
}

/**
 * The settings torchrun's variables give, or undefined when WORLD_SIZE is unset (a plain run).
 * WORLD_SIZE=1 is a distributed run of one rank (a group of one: the same code path).
 */
export function distFromEnv(env: NodeJS.ProcessEnv = process.env): DistSettings | undefined {
  if (env.WORLD_SIZE === undefined) return undefined;
  const worldSize = intVar(env, 'WORLD_SIZE', 1);
  const rank = intVar(env, 'RANK', 0, worldSize - 1);
  return parseDistSettings({
    rank,
    worldSize,
    localRank: env.LOCAL_RANK === undefined ? 0 : intVar(env, 'LOCAL_RANK', 0),
    host: env.MASTER_ADDR?.trim() || '127.0.0.1',
    port: env.MASTER_PORT === undefined ? 29500 : intVar(env, 'MASTER_PORT', 1, 65535),
  });
}
