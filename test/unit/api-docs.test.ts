import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { API_DOCS, apiDocs } from '../../scripts/api-docs.ts';

it('docs/api.md is generated from the current command definitions (run `npm run docs`)', () => {
  expect(readFileSync(API_DOCS, 'utf8')).toBe(apiDocs());
});
