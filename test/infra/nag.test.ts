import { Queue } from 'aws-cdk-lib/aws-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { synthesize, type Synthesized } from './synth.ts';
import { patience } from '../support/wait.ts';

describe('cdk-nag AwsSolutions', () => {
  let synthesized: Synthesized;
  beforeAll(() => {
    synthesized = synthesize();
  }, patience(120_000));
  afterAll(() => synthesized?.dispose());

  it('reports no unacknowledged error or warning', () => {
    expect(synthesized.violations).toEqual([]);
  });

  it('leaves no warning or error annotation on the stack', () => {
    expect(synthesized.annotations).toEqual([]);
  });

  // Guards the test above: an empty report must mean "checked and clean", not "never checked".
  it('is part of the app, so a non-compliant resource fails synthesis', () => {
    const broken = synthesize({ bundle: false, modify: (stack) => new Queue(stack, 'PlainQueue') });
    try {
      expect(broken.violations).toContainEqual(expect.stringMatching(/^error AwsSolutions-SQS4 at MoldStack\/PlainQueue\//));
    } finally {
      broken.dispose();
    }
  }, patience(120_000));
});
