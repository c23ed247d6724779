import { defineConfig } from 'vitest/config';
import { patience } from './test/support/wait.ts';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // The run's mark, the DynamoDB Local the files share, the stress mode, and the check that nothing is left.
    globalSetup: ['test/support/global-setup.ts'],
    // Stops what a file started when it ends.
    setupFiles: ['test/support/setup-file.ts'],
    // Integration tests boot the local runtime; deadlines stretch on a busy machine (test/support/wait.ts).
    testTimeout: patience(60_000),
    hookTimeout: patience(60_000),
    teardownTimeout: patience(60_000),
    // Two cores: more workers than that only makes the runtimes and qemu fight.
    maxWorkers: 2,
  },
});
