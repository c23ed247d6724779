// `npm start` as a user meets it: the API smoke, first-start credentials, data surviving a restart,
// interrupted jobs failed on the next start, and one-line refusals for what the user must fix.
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../shared/aws.ts';
import { getJob } from '../../shared/db/jobs.ts';
import { startJob } from '../../shared/orchestration.ts';
import { receiveCommand, seedAgent } from '../support/agent-seed.ts';
import { ApiClient, signature } from '../support/client.ts';
import { REPO_ROOT, RUNTIME_START_MS, runMain, startRuntime, tempDataDir, useRuntimeEndpoints, type RunningRuntime } from '../support/runtime.ts';
import { INTEGRATION_TIMEOUT_MS } from '../../infra/local/http.ts';
import { freePort } from '../../infra/local/ports.ts';
import { stopChild } from '../support/processes.ts';
import { patience, until } from '../support/wait.ts';

describe('the API through the HTTP server', () => {
  let runtime: RunningRuntime;
  let admin: ApiClient;
  let signedUrl: (command: string, response?: string) => string;
  beforeAll(async () => {
    runtime = await startRuntime();
    admin = new ApiClient(runtime.apiUrl, runtime.credentials);
    signedUrl = (command, response) => {
      const pairs: [string, string][] = [['command', command], ...(response ? [['response', response] as [string, string]] : []), ['apiKey', runtime.credentials.apikey]];
      pairs.push(['signature', signature(pairs, runtime.credentials.secretkey)]);
      return `${runtime.apiUrl}?${new URLSearchParams(pairs)}`;
    };
  });
  afterAll(async () => {
    await runtime?.stop();
  });

  it('answers listCapabilities in CloudStack JSON', async () => {
    const response = await fetch(signedUrl('listCapabilities', 'json'));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await response.json()) as any;
    expect(Object.keys(body)).toEqual(['listcapabilitiesresponse']);
    expect(Object.keys(body.listcapabilitiesresponse)).toEqual(['capability']);
    expect(body.listcapabilitiesresponse.capability).toMatchObject({
      cloudstackversion: '4.20.0.0',
      apilimitinterval: expect.any(Number),
      apilimitmax: expect.any(Number),
      securitygroupsenabled: false,
      dynamicrolesenabled: true,
      kvmsnapshotenabled: false,
      customdiskofferingmaxsize: expect.any(Number),
      defaultuipagesize: expect.any(Number),
    });
  });

  it('answers in XML, CloudStack’s default, with the same data', async () => {
    const [xml, json] = await Promise.all([
      fetch(signedUrl('listCapabilities')).then(async (r) => ({ type: r.headers.get('content-type'), text: await r.text() })),
      fetch(signedUrl('listCapabilities', 'json')).then((r) => r.json() as Promise<any>),
    ]);
    expect(xml.type).toMatch(/^text\/xml/);
    expect(xml.text).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?><listcapabilitiesresponse cloud-stack-version="4.20.0.0"><capability>/);
    for (const [field, value] of Object.entries(json.listcapabilitiesresponse.capability)) {
      expect(xml.text).toContain(`<${field}>${value}</${field}>`);
    }
  });

  it('answers an unknown command with the 432 envelope, in JSON and XML', async () => {
    const json = await fetch(signedUrl('listFrobnicators', 'json'));
    expect(json.status).toBe(432);
    expect(await json.json()).toEqual({
      errorresponse: {
        uuidList: [],
        errorcode: 432,
        cserrorcode: 9999,
        errortext: 'The given command does not exist or it is not available for user',
      },
    });
    const xml = await fetch(signedUrl('listFrobnicators'));
    expect(xml.status).toBe(432);
    expect(await xml.text()).toBe(
      '<?xml version="1.0" encoding="UTF-8"?><errorresponse cloud-stack-version="4.20.0.0">' +
        '<errorcode>432</errorcode><cserrorcode>9999</cserrorcode>' +
        '<errortext>The given command does not exist or it is not available for user</errortext></errorresponse>',
    );
  });

  it('takes the command from a form-encoded POST body too', async () => {
    const { status, body } = await admin.call('listCapabilities', {}, { method: 'POST' });
    expect(status).toBe(200);
    expect(body.listcapabilitiesresponse.capability.cloudstackversion).toBe('4.20.0.0');
  });

  it('answers an unsigned request, known command or not, with 401 and nothing more', async () => {
    for (const command of ['listCapabilities', 'listFrobnicators']) {
      const response = await fetch(`${runtime.apiUrl}?command=${command}&response=json`);
      expect(response.status).toBe(401);
      expect(await response.json()).toEqual({
        [command === 'listCapabilities' ? 'listcapabilitiesresponse' : 'errorresponse']: {
          uuidList: [],
          errorcode: 401,
          errortext: 'unable to verify user credentials and/or request signature',
        },
      });
    }
  });

  it('answers other paths as API Gateway does', async () => {
    const response = await fetch(runtime.apiUrl.replace('/client/api', '/nothing-here'));
    expect(response.status).toBe(404);
    expect(await response.json()).toEqual({ message: 'Not Found' });
  });
});

describe('starting and restarting the runtime', () => {
  it('answers every request sent while it starts: 503 until it is ready, then the API', async () => {
    const port = await freePort();
    // Its own DynamoDB Local, as `npm start` has: the longest start there is.
    const run = runMain({ port, ownDynamoDb: true });
    const url = `http://127.0.0.1:${port}/client/api?command=listCapabilities&response=json`;
    // However busy the runtime is, API Gateway's time-out bounds every answer; a request that
    // outlives it has hung (as one did when it came before the API's handler was attached).
    const ask = () =>
      fetch(url, { signal: AbortSignal.timeout(INTEGRATION_TIMEOUT_MS + patience(5_000)) }).then(
        async (response) => ({ status: response.status, retryAfter: response.headers.get('retry-after'), body: await response.json() }),
        (error) => {
          if (error.cause?.code === 'ECONNREFUSED') return { status: 'refused' as const }; // not listening yet
          throw error;
        },
      );
    const answers: Promise<Awaited<ReturnType<typeof ask>>>[] = [];
    // A request every 20 ms, not waiting for the last, until the runtime is ready and answers an API error.
    await until('the runtime to answer with the API', async () => {
      answers.push(ask());
      if (!/Ready in/.test(run.output())) return undefined;
      return (await answers.at(-1))?.status;
    }, (status) => status === 401, { within: RUNTIME_START_MS, every: 20 });
    const seen = await Promise.all(answers);
    try {
      expect(seen.filter((a) => a.status === 503).length).toBeGreaterThan(0);
      for (const answer of seen) {
        if (answer.status === 'refused' || answer.status === 401) continue;
        expect(answer).toEqual({ status: 503, retryAfter: '1', body: { message: 'Service Unavailable' } });
      }
    } finally {
      await stopChild(run.child, 'SIGINT');
    }
  }, patience(RUNTIME_START_MS + 30_000));

  it('keeps data and credentials, prints the credentials only once, and fails jobs the restart interrupted', async () => {
    const dataDir = tempDataDir();
    // Its own DynamoDB Local keeping the data on disk, as `npm start` does.
    const first = await startRuntime({ dataDir, ownDynamoDb: true });
    useRuntimeEndpoints(first);

    expect(first.output()).toMatch(/Root admin created/);
    const credentialsFile = join(dataDir, 'admin-credentials.json');
    expect(statSync(credentialsFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(dataDir, 'secret.key')).mode & 0o777).toBe(0o600);
    const credentials = JSON.parse(readFileSync(credentialsFile, 'utf8'));
    expect(credentials).toMatchObject({ username: 'admin', domain: 'ROOT' });
    expect(first.output()).toContain(credentials.secretkey);

    const marker = { pk: `TEST#${randomUUID()}`, sk: 'TEST', note: 'written before the restart' };
    await dynamo().send(new PutCommand({ TableName: 'mold', Item: marker }));

    // A job whose execution waits on an agent that never answers, then the process goes away.
    const { agent } = await seedAgent(randomUUID(), { name: 'silent-agent' });
    const job = await startJob({ cmd: 'test.interrupted' }, 'agent-command', {
      op: 'pingHost',
      args: { agentId: agent.id, host: { hostId: randomUUID(), address: '10.0.0.5', port: 22, username: 'root' }, name: 'h1' },
    });
    expect(job.executionArn).toMatch(/:execution:agent-command:/);
    await receiveCommand(agent.queueUrl);
    expect(await first.stop()).toBe(0);
    await expect(fetch(first.endpoints.dynamodb)).rejects.toThrow();

    const second = await startRuntime({ dataDir, ownDynamoDb: true });
    try {
      useRuntimeEndpoints(second);
      expect(second.output()).not.toMatch(/Root admin created/);
      expect(second.output()).not.toContain(credentials.secretkey);
      expect(second.output()).toMatch(/1 job\(s\) interrupted by the last shutdown were marked failed/);
      const { Item } = await dynamo().send(new GetCommand({ TableName: 'mold', Key: { pk: marker.pk, sk: 'TEST' } }));
      expect(Item).toEqual(marker);
      expect(await getJob(job.jobid)).toMatchObject({
        jobstatus: 2,
        jobresult: { errorcode: 530, errortext: expect.stringMatching(/interrupted/) },
      });
    } finally {
      await second.stop();
    }
  }, patience(150_000));
});

describe('refusals at start-up', () => {
  async function exitOf(run: ReturnType<typeof runMain>) {
    const code = await run.exited;
    return { code, output: run.output().trim() };
  }

  it('refuses a busy port in one line', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const { code, output } = await exitOf(runMain({ port }));
      expect(code).toBe(1);
      expect(output).toBe(
        `mold: Port ${port} is already in use (is Mold already running?). Stop the other process or set MOLD_PORT to a free port for the API.`,
      );
    } finally {
      blocker.close();
    }
  });

  it('refuses malformed ASL, naming the file and the reason', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mold-asl-'));
    writeFileSync(join(dir, 'broken.asl.json'), JSON.stringify({ StartAt: 'Missing', States: { Only: { Type: 'Pass', End: true } } }));
    const { code, output } = await exitOf(runMain({ statemachinesDirs: [dir] }));
    expect(code).toBe(1);
    expect(output.split('\n')).toHaveLength(1);
    expect(output).toMatch(new RegExp(`^mold: ${join(dir, 'broken.asl.json')}: .*Missing`));
  });

  it('refuses ASL that is not JSON, or names an unknown substitution', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mold-asl-'));
    writeFileSync(join(dir, 'a.asl.json'), '{"StartAt": ');
    const notJson = await exitOf(runMain({ statemachinesDirs: [dir] }));
    expect(notJson.output).toMatch(/^mold: .*a\.asl\.json: not valid JSON/);

    writeFileSync(join(dir, 'a.asl.json'), readFileSync(join(REPO_ROOT, 'statemachines/agent-command.asl.json'), 'utf8').replace('TasksFunctionArn', 'NoSuchFunctionArn'));
    const unknown = await exitOf(runMain({ statemachinesDirs: [dir] }));
    expect(unknown.output).toMatch(/^mold: .*a\.asl\.json: unknown substitution \$\{NoSuchFunctionArn\}$/);
  });

  it('says what to install when Java is missing', async () => {
    // Only Node's own directory on PATH: no java.
    const { code, output } = await exitOf(runMain({ env: { PATH: dirname(process.execPath) }, ownDynamoDb: true }));
    expect(code).toBe(1);
    expect(output).toBe(
      'mold: Java was not found. DynamoDB Local needs Java 17 or newer: install it (on Debian: apt-get install openjdk-17-jre-headless).',
    );
  });
});
