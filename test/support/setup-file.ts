// Runs in every test file (vitest's setupFiles): when the file ends, passed or failed, whatever it
// started and did not stop is stopped here, after the file's own afterAll hooks.
import { afterAll } from 'vitest';
import { stopAllChildren } from './processes.ts';
import { patience } from './wait.ts';

afterAll(stopAllChildren, patience(60_000));
