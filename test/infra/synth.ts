// Synthesizes the CDK app exactly as `cdk synth` does (buildApp, cdk-nag included) into a temporary
// cloud assembly, and reads back what a deployment would see: the template, the validation report
// and the stack's annotations.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { App } from 'aws-cdk-lib';
import { buildApp, STACK_NAME, type MoldStack } from '../../infra/stack.ts';

/** One finding of a validation plugin or an annotation, as `severity rule at path: text`. */
export type Finding = string;

export interface Synthesized {
  readonly template: Record<string, any>;
  /** Unacknowledged violations of every validation plugin (cdk-nag's AwsSolutions among them). */
  readonly violations: Finding[];
  /** Warnings and errors that constructs attached to the stack. */
  readonly annotations: Finding[];
  readonly dispose: () => void;
}

interface ValidationReport {
  pluginReports: {
    pluginName: string;
    violations: {
      ruleName: string;
      description: string;
      severity?: string;
      violatingConstructs: { constructPath: string }[];
    }[];
  }[];
}

export interface SynthOptions {
  /** Skip esbuild bundling (assets become placeholders) where a test needs no code. */
  readonly bundle?: boolean;
  /** Changes to the stack before synthesis, e.g. to prove a check fires. */
  readonly modify?: (stack: MoldStack) => void;
  /** Context values, as `cdk synth -c name=value` gives them. */
  readonly context?: Record<string, string>;
}

export function synthesize({ bundle = true, modify, context: extra = {} }: SynthOptions = {}): Synthesized {
  const outdir = mkdtempSync(join(tmpdir(), 'mold-cdk-'));
  // The context of cdk.json (feature flags, should it get any) applies here as it does to `cdk synth`.
  const { context = {} } = JSON.parse(readFileSync(new URL('../../cdk.json', import.meta.url), 'utf8'));
  if (!bundle) context['aws:cdk:bundling-stacks'] = [];
  Object.assign(context, extra);
  const app = new App({ outdir, context });
  const stack = buildApp(app);
  modify?.(stack);
  try {
    app.synth();
  } catch (error) {
    // A failed validation still writes the assembly and its report, which the tests read and list.
    if (!existsSync(join(outdir, 'validation-report.json'))) throw error;
  }
  const read = (file: string) => JSON.parse(readFileSync(join(outdir, file), 'utf8'));

  const report: ValidationReport = read('validation-report.json');
  const violations = report.pluginReports.flatMap((plugin) =>
    plugin.violations.flatMap((violation) =>
      violation.violatingConstructs.map(
        (where) => `${violation.severity ?? 'error'} ${violation.ruleName} at ${where.constructPath}: ${violation.description} (${plugin.pluginName})`,
      ),
    ),
  );

  const metadata: Record<string, { type: string; data: unknown }[]> = read('manifest.json').artifacts[STACK_NAME].metadata ?? {};
  const annotations = Object.entries(metadata).flatMap(([path, entries]) =>
    entries
      .filter((entry) => entry.type === 'aws:cdk:warning' || entry.type === 'aws:cdk:error')
      .map((entry) => `${entry.type} at ${path}: ${String(entry.data)}`),
  );

  return {
    template: read(`${STACK_NAME}.template.json`),
    violations,
    annotations,
    dispose: () => rmSync(outdir, { recursive: true, force: true }),
  };
}
