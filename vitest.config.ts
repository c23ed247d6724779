import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests boot the local runtime (a JVM among others); the slowest wait on timeouts.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: more workers than that only makes the JVMs and qemu fight.
    maxWorkers: 2,
  },
});
