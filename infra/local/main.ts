// `npm start`: runs Mold's control plane on this machine until Ctrl-C.
import { join } from 'node:path';
import { LocalRuntimeError } from './errors.ts';
import { REPO_ROOT, startLocalRuntime } from './runtime.ts';
import { InvalidStateMachine } from './stepfunctions/definitions.ts';

const port = Number(process.env.MOLD_PORT ?? 8080);
const host = process.env.MOLD_HOST ?? '127.0.0.1';
const dataDir = process.env.MOLD_DATA_DIR ?? join(REPO_ROOT, '.mold');
// Colon-separated folders of ASL files; tests add fixture machines beside the real ones.
const statemachinesDirs = process.env.MOLD_STATEMACHINES_DIRS?.split(':').filter(Boolean);
// A CloudStack web UI build (its dist/ folder) to serve at /client/; Mold contains none (README).
const uiDir = process.env.MOLD_UI_DIR || undefined;

try {
  const runtime = await startLocalRuntime({ port, host, dataDir, statemachinesDirs, uiDir });
  const lines = [
    'Mold local runtime',
    `  API             ${runtime.apiUrl}`,
    `  DynamoDB Local  ${runtime.endpoints.dynamodb}`,
    `  SQS emulator    ${runtime.endpoints.sqs}`,
    `  Agent gateway   ${runtime.apiUrl.replace(/\/client\/api$/, '')}/agent/v1`,
    `  Step Functions  ${runtime.endpoints.sfn}`,
    `  STS stand-in    ${runtime.endpoints.sts}`,
    `  Data            ${dataDir}`,
    ...(uiDir ? [`  Web UI          ${runtime.apiUrl.replace(/api$/, '')}  (${uiDir})`] : []),
  ];
  if (runtime.newCredentials) {
    const c = runtime.newCredentials;
    lines.push(
      '',
      `Root admin created. This is the only time it is printed; it is also kept in ${runtime.credentialsFile} (mode 0600).`,
      `  domain     ${c.domain}`,
      `  username   ${c.username}`,
      `  password   ${c.password}`,
      `  apikey     ${c.apikey}`,
      `  secretkey  ${c.secretkey}`,
    );
  } else {
    lines.push('', `Root admin credentials: ${runtime.credentialsFile}`);
  }
  if (runtime.interruptedJobs > 0) {
    lines.push('', `${runtime.interruptedJobs} job(s) interrupted by the last shutdown were marked failed.`);
  }
  lines.push('', `Ready in ${(runtime.startupMs / 1000).toFixed(2)} s. Press Ctrl-C to stop.`);
  process.stdout.write(`${lines.join('\n')}\n`);

  // With the parent gone, stdout may be a broken pipe; stopping must not die writing to it.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {});
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    process.stdout.write('Stopping…\n');
    await runtime.stop();
    process.exit(0);
  };
  process.on('SIGINT', shutdown);
  process.on('SIGTERM', shutdown);
} catch (error) {
  if (error instanceof LocalRuntimeError || error instanceof InvalidStateMachine) {
    process.stderr.write(`mold: ${error.message}\n`);
    process.exit(1);
  }
  throw error;
}
