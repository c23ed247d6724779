// The whole control plane on one machine: DynamoDB Local, the SQS emulator, the Step Functions
// stand-in and the API Gateway stand-in, wired to the real handlers through the SDK's standard
// AWS_ENDPOINT_URL_* variables.
import { chmodSync, existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { join, resolve } from 'node:path';
import { SQSClient } from '@aws-sdk/client-sqs';
import { startFauxqs } from 'fauxqs';
import { newDataKey, SECRET_KEY_FILE_VARIABLE } from '../../shared/crypto/secrets.ts';
import { CA_FILE_VARIABLE, ensureLocalCa } from '../../shared/crypto/ca.ts';
import { AGENT_QUEUE_ROLE_VARIABLE } from '../../functions/agent-gateway/config.ts';
import { restoreAgentQueues } from '../../functions/agent-gateway/queues.ts';
import { bootstrapRootAdmin, type RootAdminCredentials } from '../../shared/bootstrap.ts';
import { TABLE_NAME_VARIABLE } from '../../shared/db/table.ts';
import { STATE_MACHINES_VARIABLE } from '../../shared/orchestration.ts';
import { arnSubstitution, lambdaFunctions, stateMachineSubstitution, type FunctionName } from '../functions.ts';
import { LOCAL_CREDENTIALS, LOCAL_REGION } from './aws-local.ts';
import { checkJava, ensureTable, startDynamoDbLocal, untilServing } from './dynamodb.ts';
import { apiGatewayClientError, apiGatewayListener, MAX_HEADER_BYTES, notReadyListener } from './http.ts';
import { invokeLocal, localFunctionArn } from './lambda.ts';
import { freePort, listen, localServer } from './ports.ts';
import { loadStateMachines } from './stepfunctions/definitions.ts';
import { stepFunctionsRequestListener } from './stepfunctions/server.ts';
import { LocalStepFunctions, stateMachineArn } from './stepfunctions/service.ts';
import { LOCAL_AGENT_QUEUE_ROLE_ARN, LocalSts, stsRequestListener } from './sts.ts';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
const TABLE_NAME = process.env[TABLE_NAME_VARIABLE] || 'mold';
/** An already running DynamoDB (Local) to keep the inventory in, instead of starting one; tests share one. */
const DYNAMODB_ENDPOINT = process.env.MOLD_DYNAMODB_ENDPOINT;
/** The local stand-in for the stack's EventBridge rate(1 minute) schedule (tests shorten it). */
const SWEEP_INTERVAL_MS = Number(process.env.MOLD_SWEEP_INTERVAL_SECONDS ?? 60) * 1000;

export interface LocalRuntimeOptions {
  port: number;
  host: string;
  dataDir: string;
  /** A CloudStack web UI build (its dist/) to serve at /client/. */
  uiDir?: string;
  statemachinesDirs?: string[];
}

export interface LocalRuntime {
  apiUrl: string;
  endpoints: { dynamodb: string; sqs: string; sfn: string; sts: string };
  stateMachines: Record<string, string>;
  /** Present only on the first start, when the root admin was created. */
  newCredentials?: RootAdminCredentials;
  credentialsFile: string;
  interruptedJobs: number;
  startupMs: number;
  stop(): Promise<void>;
}

export async function startLocalRuntime(options: LocalRuntimeOptions): Promise<LocalRuntime> {
  const started = performance.now();
  const statemachinesDirs = options.statemachinesDirs ?? [join(REPO_ROOT, 'statemachines')];
  const machineNames = statemachinesDirs.flatMap((dir) => readdirSync(dir).filter((file) => file.endsWith('.asl.json')).map((file) => file.slice(0, -'.asl.json'.length)));
  const substitutions = Object.fromEntries([
    ...(Object.keys(lambdaFunctions) as FunctionName[]).map((name) => [arnSubstitution(name), localFunctionArn(name)]),
    ...machineNames.map((name) => [stateMachineSubstitution(name), stateMachineArn(name)]),
  ]);
  // Everything that can be refused is checked before anything is started.
  const stateMachineFiles = statemachinesDirs.flatMap((dir) => loadStateMachines(dir, substitutions));
  if (!DYNAMODB_ENDPOINT) checkJava();
  // The API listens first, so a taken port is refused before anything starts; until the rest is up it
  // answers 503, as API Gateway does when its integration is unavailable (a client retries, none hangs).
  const apiServer = localServer(notReadyListener, { maxHeaderSize: MAX_HEADER_BYTES });
  apiServer.on('clientError', apiGatewayClientError);
  const apiPort = await listen(apiServer, options.port, options.host, 'API');

  const stops: (() => Promise<unknown> | void)[] = [() => closeServer(apiServer)];
  const stop = async () => {
    for (const step of stops.reverse()) await step();
  };
  try {
    mkdirSync(options.dataDir, { recursive: true });
    let dynamodb: { endpoint: string };
    if (DYNAMODB_ENDPOINT) {
      // Someone else's, perhaps still starting (the test suite starts its own while the first files load).
      await untilServing(DYNAMODB_ENDPOINT, `The DynamoDB at MOLD_DYNAMODB_ENDPOINT (${DYNAMODB_ENDPOINT}) does not answer`);
      dynamodb = { endpoint: DYNAMODB_ENDPOINT };
    } else {
      const local = startDynamoDbLocal(join(options.dataDir, 'dynamodb'), await freePort());
      stops.push(() => local.stop());
      await local.ready;
      dynamodb = local;
    }
    const sqsServer = await startFauxqs({ port: 0, logger: false });
    stops.push(() => sqsServer.stop());
    const sqsEndpoint = `http://127.0.0.1:${sqsServer.port}`;

    const stepFunctions = new LocalStepFunctions(
      stateMachineFiles,
      new SQSClient({ endpoint: sqsEndpoint, region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, useQueueUrlAsEndpoint: false }),
    );
    stops.push(() => stepFunctions.stop());
    const sfnServer = localServer(stepFunctionsRequestListener(stepFunctions));
    const sfnPort = await listen(sfnServer, 0, '127.0.0.1', 'Step Functions stand-in');
    stops.push(() => closeServer(sfnServer));

    const stsServer = localServer(stsRequestListener(new LocalSts()));
    const stsPort = await listen(stsServer, 0, '127.0.0.1', 'STS stand-in');
    stops.push(() => closeServer(stsServer));

    const endpoints = { dynamodb: dynamodb.endpoint, sqs: sqsEndpoint, sfn: `http://127.0.0.1:${sfnPort}`, sts: `http://127.0.0.1:${stsPort}` };
    const stateMachines = Object.fromEntries(stateMachineFiles.map(({ name }) => [name, stateMachineArn(name)]));
    Object.assign(process.env, {
      AWS_REGION: LOCAL_REGION,
      AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
      AWS_ENDPOINT_URL_DYNAMODB: endpoints.dynamodb,
      AWS_ENDPOINT_URL_SQS: endpoints.sqs,
      AWS_ENDPOINT_URL_SFN: endpoints.sfn,
      AWS_ENDPOINT_URL_STS: endpoints.sts,
      [TABLE_NAME_VARIABLE]: TABLE_NAME,
      [STATE_MACHINES_VARIABLE]: JSON.stringify(stateMachines),
      [SECRET_KEY_FILE_VARIABLE]: ensureSecretKey(options.dataDir),
      // Mold's CA, made at first start as the data key is; the agent gateway signs with it.
      [CA_FILE_VARIABLE]: ensureLocalCa(join(options.dataDir, 'ca.json')),
      [AGENT_QUEUE_ROLE_VARIABLE]: LOCAL_AGENT_QUEUE_ROLE_ARN,
    });

    await ensureTable(endpoints.dynamodb, TABLE_NAME);
    const credentialsFile = join(options.dataDir, 'admin-credentials.json');
    const newCredentials = await bootstrapRootAdmin();
    if (newCredentials) writePrivateFile(credentialsFile, `${JSON.stringify(newCredentials, null, 2)}\n`);

    // The SQS emulator keeps queues in memory: enrolled agents get theirs back (at a new URL).
    await restoreAgentQueues();

    // Executions died with the previous process; the sweeper fails the jobs they left pending.
    const { orphanedJobs } = (await invokeLocal('sweeper', {})) as { orphanedJobs: string[] };
    const sweeper = setInterval(() => void invokeLocal('sweeper', {}).catch(() => {}), SWEEP_INTERVAL_MS);
    sweeper.unref();
    stops.push(() => clearInterval(sweeper));

    apiServer.removeAllListeners('request');
    apiServer.on('request', apiGatewayListener(options.uiDir));
    const apiUrl = `http://${options.host}:${apiPort}/client/api`;
    const runtimeFile = join(options.dataDir, 'runtime.json');
    writePrivateFile(runtimeFile, `${JSON.stringify({ pid: process.pid, apiUrl, endpoints, stateMachines, table: TABLE_NAME }, null, 2)}\n`);
    stops.push(() => rmSync(runtimeFile, { force: true }));
    return {
      apiUrl,
      endpoints,
      stateMachines,
      newCredentials,
      credentialsFile,
      interruptedJobs: orphanedJobs.length,
      startupMs: performance.now() - started,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

function ensureSecretKey(dataDir: string): string {
  const file = join(dataDir, 'secret.key');
  if (!existsSync(file)) writePrivateFile(file, `${newDataKey()}\n`);
  return file;
}

function writePrivateFile(file: string, content: string) {
  writeFileSync(file, content, { mode: 0o600 });
  chmodSync(file, 0o600);
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.closeAllConnections();
    server.close(() => resolve());
  });
}
