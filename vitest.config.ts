import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    // native tests train small networks on 2 cores: give them room, and run files one at a time so
    // libtorch's intra-op threads are not oversubscribed by parallel workers.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    fileParallelism: false,
    pool: 'forks',
    // global.gc for the memory tests (test/merge.test.ts measures peak memory after explicit collections)
    execArgv: ['--expose-gc'],
    // a fixed thread count: the default count adapts to other processes' load, and several tests check
    // that two runs give the same bits (test/threads-adaptive.test.ts checks the adaptive default)
    env: { BTM_NUM_THREADS: String(availableParallelism()) },
  },
});
