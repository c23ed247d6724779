// Every Lambda function of the control plane, built from the one list in infra/functions.ts.
import { fileURLToPath } from 'node:url';
import { Duration } from 'aws-cdk-lib';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, Runtime } from 'aws-cdk-lib/aws-lambda';
import { LogLevel, NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { TABLE_NAME_VARIABLE } from '../../shared/db/table.ts';
import { lambdaFunctions, type FunctionName } from '../functions.ts';
import type { Inventory } from './inventory.ts';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

// ESM output still contains CommonJS dependencies that call require() for Node built-ins.
const requireShim = "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);";

type FunctionsByName = Record<FunctionName, NodejsFunction>;

export interface ControlPlaneFunctionsProps {
  readonly inventory: Inventory;
}

export class ControlPlaneFunctions extends Construct {
  readonly byName: FunctionsByName;

  constructor(scope: Construct, id: string, props: ControlPlaneFunctionsProps) {
    super(scope, id);
    const names = Object.keys(lambdaFunctions) as FunctionName[];
    this.byName = Object.fromEntries(names.map((name) => [name, this.build(name, props)])) as FunctionsByName;
  }

  private build(name: FunctionName, { inventory }: ControlPlaneFunctionsProps): NodejsFunction {
    const scope = new Construct(this, name);
    const logGroup = new LogGroup(scope, 'Logs', { retention: RetentionDays.ONE_MONTH });
    // An own role instead of the default one, which carries the AWS managed AWSLambdaBasicExecutionRole
    // (logs on every log group); this one may write to its own log group only.
    const role = new Role(scope, 'Role', { assumedBy: new ServicePrincipal('lambda.amazonaws.com') });
    logGroup.grantWrite(role);

    const fn = new NodejsFunction(scope, 'Function', {
      entry: `${repoRoot}${lambdaFunctions[name].entry}`,
      projectRoot: repoRoot,
      depsLockFilePath: `${repoRoot}package-lock.json`,
      description: lambdaFunctions[name].description,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: 256,
      // The api sits behind API Gateway's 30 s integration limit; the sweeper runs every minute and
      // must finish before the next run.
      timeout: Duration.seconds(29),
      role,
      logGroup,
      // Source maps make stack traces in the logs point at the TypeScript sources.
      environment: { [TABLE_NAME_VARIABLE]: inventory.table.tableName, NODE_OPTIONS: '--enable-source-maps' },
      bundling: {
        format: OutputFormat.ESM,
        target: 'node24',
        mainFields: ['module', 'main'],
        banner: requireShim,
        // Bundle the SDK rather than use the runtime's copy, so AWS runs the versions the tests ran.
        bundleAwsSDK: true,
        minify: true,
        sourceMap: true,
        forceDockerBundling: false,
        logLevel: LogLevel.WARNING,
      },
    });
    inventory.grantReadWriteData(fn);
    return fn;
  }
}
