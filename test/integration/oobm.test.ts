// Out-of-band management through /client/api on the real runtime: configureOutOfBandManagement, the
// zone/cluster/host switches, issueOutOfBandManagementPowerAction and changeOutOfBandManagementPassword,
// with the test playing the host's agent (it takes the command from the agent's queue, opens the sealed
// BMC password with the agent's key and answers through Step Functions). The background power-state
// sync is the agent's report (recordReport called directly, as host-health.test.ts does). Every
// refusal changes nothing; the BMC password is never stored, logged or put in an execution's input in
// the clear. The same commands against the lab's BMCs (ipmi_sim, the real ipmitool) are in
// test/e2e/oobm-lab.test.ts.
import { DescribeExecutionCommand } from '@aws-sdk/client-sfn';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSealed } from '../../shared/agent/sealing.ts';
import { dynamo, sfn } from '../../shared/aws.ts';
import { createHostRecord, getHost, type Host } from '../../shared/db/hosts.ts';
import { getCluster } from '../../shared/db/infrastructure.ts';
import { tableName } from '../../shared/db/items.ts';
import { getJob } from '../../shared/db/jobs.ts';
import { getDomain } from '../../shared/db/identity.ts';
import { recordReport } from '../../shared/host-reports.ts';
import { answer, receiveCommand, seedAgent, type SeededAgent } from '../support/agent-seed.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember } from '../support/members.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { missing, noEntity, ok, refused, startWorld, unique, type World } from './identity-fixtures.ts';

const PASSWORD = `bmc-${randomUUID().slice(0, 8)}`;
const NEW_PASSWORD = `new-${randomUUID().slice(0, 8)}`;

let world: World;
let admin: ApiClient;
let user: ApiClient;
let zone: any;
let cluster: any;
let seeded: SeededAgent;
let host: Host;
let other: Host;

const listed = async (h: Host) => ok(await admin.call('listHosts', { id: h.id }), 'listHosts').host[0].outofbandmanagement;
const start = async (command: string, params: Record<string, string | number>) => {
  const body = ok(await admin.call(command, params), command);
  expect(Object.keys(body)).toEqual(['jobid']);
  return body.jobid as string;
};
const run = async (command: string, params: Record<string, string | number>) => admin.waitForJob(await start(command, params));
const configure = (h: Host, extra: Record<string, string> = {}) =>
  admin.call('configureOutOfBandManagement', { hostid: h.id, driver: 'ipmitool', address: '10.66.9.10', port: '623', username: 'admin', password: PASSWORD, ...extra });
const allItems = async () => {
  const items: unknown[] = [];
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await dynamo().send(new ScanCommand({ TableName: tableName(), ExclusiveStartKey }));
    items.push(...(page.Items ?? []));
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey);
  return items;
};
/** A report of the agent on `h`, with a BMC reading made with the configuration now stored (unless `configId` says another). */
const report = async (h: Host, oobm?: { powerState: 'On' | 'Off' | 'Unknown'; authError?: boolean; error?: string; configId?: string }) => {
  const configId = (await getHost(h.id))!.oobm?.configId;
  return recordReport(seeded.agent, {
    version: '0.1.0',
    hosts: [{ hostId: h.id, reachable: true, libvirtd: true, domains: [], ...(oobm && { oobm: { configId, ...oobm, at: new Date().toISOString() } }) }],
  });
};

beforeAll(async () => {
  world = await startWorld();
  admin = world.admin;
  useRuntimeEndpoints(world.runtime);
  user = (await seedMember(world.runtime.apiUrl, unique('oouser'), (await getDomain(world.rootDomainId))!, 'User')).client;
  zone = ok(await admin.call('createZone', { name: unique('ooz'), networktype: 'Advanced', dns1: '8.8.8.8' }), 'createZone').zone;
  const pod = ok(await admin.call('createPod', { zoneid: zone.id, name: unique('oop'), gateway: '10.70.0.1', netmask: '255.255.255.0', startip: '10.70.0.10' }), 'createPod').pod;
  cluster = ok(await admin.call('addCluster', { zoneid: zone.id, podid: pod.id, clustername: unique('ooc'), hypervisor: 'KVM', clustertype: 'CloudManaged' }), 'addCluster').cluster[0];
  seeded = await seedAgent(zone.id);
  const c = (await getCluster(cluster.id))!;
  const fields = { status: 'Up' as const, resourcestate: 'Enabled' as const, agentId: seeded.agent.id, username: 'root', port: 22, lastpinged: new Date().toISOString() };
  host = await createHostRecord(c, { name: unique('ooh'), ipaddress: '10.70.0.21', ...fields });
  other = await createHostRecord(c, { name: unique('ooh'), ipaddress: '10.70.0.22', ...fields });
});

afterAll(async () => {
  await world?.runtime.stop();
});

describe('configureOutOfBandManagement', () => {
  it('shows an unconfigured host as upstream does: disabled, power state Disabled', async () => {
    expect(await listed(host)).toEqual({ powerstate: 'Disabled', enabled: false });
  });

  it('refuses bad input with upstream’s codes and texts, and changes nothing', async () => {
    const api = 'configureOutOfBandManagement';
    const base = { hostid: host.id, driver: 'ipmitool', address: '10.66.9.10', port: '623', username: 'admin', password: PASSWORD };
    for (const name of Object.keys(base)) {
      refused(await admin.call(api, Object.fromEntries(Object.entries(base).filter(([k]) => k !== name))), api, 431, missing(api.toLowerCase(), name));
    }
    const unknown = randomUUID();
    refused(await admin.call(api, { ...base, hostid: unknown }), api, 431, noEntity(api.toLowerCase(), 'hostid', unknown));
    refused(await admin.call(api, { ...base, driver: 'nodriver' }), api, 530, 'Out-of-band management driver is not available. Please provide a valid driver name.');
    for (const port of ['0', '65536', 'abc', '-1']) refused(await admin.call(api, { ...base, port }), api, 431, `Invalid parameter port value=${port}: a port number, 1 to 65535`);
    refused(await admin.call(api, { ...base, address: 'bad address!' }), api, 431, /^Invalid parameter address value=bad address!/);
    refused(await user.call(api, base), api, 432, 'The given command does not exist or it is not available for user');
    expect((await getHost(host.id))!.oobm).toBeUndefined();
    expect(await listed(host)).toEqual({ powerstate: 'Disabled', enabled: false });
  });

  it('keeps the configuration with the password sealed to the agent, and shows it masked', async () => {
    const body = ok(await configure(host), 'configureOutOfBandManagement');
    expect(body).toEqual({
      outofbandmanagement: {
        hostid: host.id,
        powerstate: 'Disabled',
        enabled: false,
        driver: 'ipmitool',
        address: '10.66.9.10',
        port: '623',
        username: 'admin',
        password: '****',
        description: 'Out-of-band management successfully configured for the host',
        status: true,
      },
    });
    expect(await listed(host)).toEqual({ powerstate: 'Disabled', enabled: false, driver: 'ipmitool', address: '10.66.9.10', port: '623', username: 'admin', password: '****' });
    const stored = (await getHost(host.id))!.oobm!;
    expect(openSealed(seeded.privateKeyPem, stored.password)).toBe(PASSWORD);
    expect(JSON.stringify(await allItems())).not.toContain(PASSWORD);
    const events = ok(await admin.call('listEvents', { type: 'HOST.OOBM.CONFIGURE', listall: true }), 'listEvents').event;
    expect(events[0]).toMatchObject({ state: 'Completed', resourceid: host.id });
    expect(events[0].description).toContain('10.66.9.10:623');
  });

  it('takes driver redfish (any case) the same way, and ipmitool again', async () => {
    const body = ok(await configure(host, { driver: 'Redfish', port: '443' }), 'configureOutOfBandManagement');
    expect(body.outofbandmanagement).toMatchObject({ driver: 'redfish', address: '10.66.9.10', port: '443', username: 'admin', password: '****' });
    expect(await listed(host)).toMatchObject({ driver: 'redfish', port: '443' });
    expect((await getHost(host.id))!.oobm).toMatchObject({ driver: 'redfish', port: '443' });
    ok(await configure(host), 'configureOutOfBandManagement');
    expect(await listed(host)).toMatchObject({ driver: 'ipmitool', port: '623' });
  });
});

describe('power actions', () => {
  it('fails the job with upstream’s text while out-of-band management is not enabled for the host', async () => {
    const job = await run('issueOutOfBandManagementPowerAction', { hostid: host.id, action: 'STATUS' });
    expect(job).toMatchObject({ jobstatus: 2, jobresult: { errorcode: 530, errortext: 'Out-of-band management is disabled or not configured for the host. Aborting Operation.' } });
    const unconfigured = await run('enableOutOfBandManagementForHost', { hostid: other.id });
    expect(unconfigured).toMatchObject({
      jobstatus: 2,
      jobresult: { errorcode: 530, errortext: 'Out-of-band management is not configured for the host. Please configure the host before enabling/disabling it.' },
    });
  });

  it('refuses a bad action or timeout before any job', async () => {
    const api = 'issueOutOfBandManagementPowerAction';
    for (const action of ['on', 'REBOOT', '']) {
      const answer = await admin.call(api, { hostid: host.id, action });
      if (action === '') refused(answer, api, 431, missing(api.toLowerCase(), 'action'));
      else refused(answer, api, 431, `Invalid parameter action value=${action}: valid actions are: ON, OFF, CYCLE, RESET, SOFT, STATUS`);
    }
    refused(await admin.call(api, { hostid: host.id, action: 'ON', timeout: 0 }), api, 431, 'Invalid parameter timeout value=0: 1 to 3600 seconds');
    refused(await user.call(api, { hostid: host.id, action: 'ON' }), api, 432, 'The given command does not exist or it is not available for user');
  });

  it('enables the host, sends the action to its agent with the sealed password and the ipmitool settings, and shows the state read after it', async () => {
    const enabled = await run('enableOutOfBandManagementForHost', { hostid: host.id });
    expect(enabled).toMatchObject({ jobstatus: 1, jobresult: { outofbandmanagement: { enabled: true, status: true } } });
    expect(await listed(host)).toMatchObject({ enabled: true, powerstate: 'Disabled' });

    const jobid = await start('issueOutOfBandManagementPowerAction', { hostid: host.id, action: 'OFF', timeout: 20 });
    const message = await receiveCommand(seeded.agent.queueUrl);
    expect(message).toMatchObject({
      commandId: jobid,
      type: 'oobmPowerAction',
      payload: {
        hostId: host.id,
        action: 'OFF',
        timeoutSeconds: 20,
        oobm: { driver: 'ipmitool', address: '10.66.9.10', port: 623, username: 'admin' },
        options: { path: '/usr/bin/ipmitool', interface: 'lanplus', retries: 1, cipherSuite: 3, redfish: { useHttps: true, ignoreSsl: false, retries: 2 } },
      },
    });
    expect(openSealed(seeded.privateKeyPem, (message.payload as any).oobm.password)).toBe(PASSWORD);
    await answer(message, { result: { action: 'OFF', powerState: 'Off', result: 'Chassis Power Control: Down/Off' } });
    const job = await admin.waitForJob(jobid);
    expect(job).toMatchObject({ jobstatus: 1, cmd: 'issueOutOfBandManagementPowerAction', jobinstancetype: 'Host', jobinstanceid: host.id });
    expect(job.jobresult).toEqual({
      outofbandmanagement: {
        hostid: host.id,
        powerstate: 'Off',
        enabled: true,
        driver: 'ipmitool',
        address: '10.66.9.10',
        port: '623',
        username: 'admin',
        password: '****',
        action: 'OFF',
        description: 'Chassis Power Control: Down/Off',
        status: true,
      },
    });
    expect(await listed(host)).toMatchObject({ powerstate: 'Off' });
    const execution = await sfn().send(new DescribeExecutionCommand({ executionArn: (await getJob(jobid))!.executionArn! }));
    expect(execution.input).not.toContain(PASSWORD);
    expect(world.runtime.output()).not.toContain(PASSWORD);
    const events = ok(await admin.call('listEvents', { type: 'HOST.OOBM.ACTION', listall: true }), 'listEvents').event;
    expect(events.map((e: any) => e.state)).toEqual(expect.arrayContaining(['Scheduled', 'Completed']));
  });

  it('fails the job with the agent’s words; an authentication error leaves the state Unknown and raises ALERT.OOBM.AUTHERROR', async () => {
    const jobid = await start('issueOutOfBandManagementPowerAction', { hostid: host.id, action: 'STATUS' });
    const message = await receiveCommand(seeded.agent.queueUrl);
    expect(message.deadline).toBeDefined();
    const cause = `Out-of-band Management action (STATUS) on host (${host.id}) failed due to authentication error: RAKP 2 HMAC is invalid. Please check configured credentials.`;
    await answer(message, { error: 'OobmAuthError', cause });
    expect(await admin.waitForJob(jobid)).toMatchObject({ jobstatus: 2, jobresult: { errorcode: 530, errortext: cause } });
    expect(await listed(host)).toMatchObject({ powerstate: 'Unknown' });
    const alerts = ok(await admin.call('listAlerts', { type: '29' }), 'listAlerts').alert ?? [];
    expect(alerts.find((a: any) => a.description.includes(host.id))).toMatchObject({
      type: 29,
      name: 'ALERT.OOBM.AUTHERROR',
      description: `Out-of-band management auth-error detected for host:${host.id} in cluster:${host.clusterId}, zone:${host.zoneId}`,
    });
  });

  it('refuses actions while the cluster or the zone is switched off, and their hosts read Disabled', async () => {
    const off = await run('disableOutOfBandManagementForCluster', { clusterid: cluster.id });
    expect(off).toMatchObject({ jobstatus: 1, jobresult: { outofbandmanagement: { enabled: false, status: true } } });
    expect(await listed(host)).toMatchObject({ enabled: true, powerstate: 'Disabled' });
    // The UI offers Enable where upstream's detail reads "false", Disable otherwise.
    const clusterDetails = async () => ok(await admin.call('listClusters', { id: cluster.id }), 'listClusters').cluster[0].resourcedetails;
    expect(await clusterDetails()).toEqual({ outOfBandManagementEnabled: 'false' });
    expect(await run('issueOutOfBandManagementPowerAction', { hostid: host.id, action: 'ON' })).toMatchObject({
      jobstatus: 2,
      jobresult: { errorcode: 530, errortext: "Out-of-band management is disabled for the host's cluster. Aborting Operation." },
    });
    expect((await run('enableOutOfBandManagementForCluster', { clusterid: cluster.id })).jobstatus).toBe(1);
    expect(await clusterDetails()).toEqual({ outOfBandManagementEnabled: 'true' });
    expect((await run('disableOutOfBandManagementForZone', { zoneid: zone.id })).jobstatus).toBe(1);
    expect(ok(await admin.call('listZones', { id: zone.id }), 'listZones').zone[0].resourcedetails).toEqual({ outOfBandManagementEnabled: 'false' });
    expect(await run('issueOutOfBandManagementPowerAction', { hostid: host.id, action: 'ON' })).toMatchObject({
      jobstatus: 2,
      jobresult: { errorcode: 530, errortext: "Out-of-band management is disabled for the host's zone. Aborting Operation." },
    });
    expect((await run('enableOutOfBandManagementForZone', { zoneid: zone.id })).jobstatus).toBe(1);
    const unknown = randomUUID();
    refused(await admin.call('enableOutOfBandManagementForZone', { zoneid: unknown }), 'enableOutOfBandManagementForZone', 431, noEntity('enableoutofbandmanagementforzone', 'zoneid', unknown));
    refused(await user.call('disableOutOfBandManagementForHost', { hostid: host.id }), 'disableOutOfBandManagementForHost', 432, 'The given command does not exist or it is not available for user');
  });
});

describe('the background power-state sync (the agent’s reports)', () => {
  it('hands the agent the BMCs to read, and records what it read', async () => {
    const answerOf = await report(host);
    const watched = answerOf.hosts.find((h) => h.hostId === host.id)!;
    expect(watched.oobm).toMatchObject({ driver: 'ipmitool', address: '10.66.9.10', port: 623, username: 'admin' });
    expect(openSealed(seeded.privateKeyPem, watched.oobm!.password)).toBe(PASSWORD);
    expect(answerOf.hosts.find((h) => h.hostId === other.id)?.oobm).toBeUndefined();
    expect(answerOf.oobm).toEqual({ options: { path: '/usr/bin/ipmitool', interface: 'lanplus', retries: 1, cipherSuite: 3, redfish: { useHttps: true, ignoreSsl: false, retries: 2 } }, timeoutSeconds: 60, poolSize: 50 });

    await report(host, { powerState: 'On' });
    expect(await listed(host)).toMatchObject({ powerstate: 'On' });
    await report(host, { powerState: 'Unknown', error: 'no answer within 60 s' });
    expect(await listed(host)).toMatchObject({ powerstate: 'Unknown' });
    const transitions = ok(await admin.call('listEvents', { type: 'HOST.OOBM.POWERSTATE.TRANSITION', listall: true }), 'listEvents').event;
    expect(transitions[0].description).toBe(`Transitioned out-of-band management power state from:On to:Unknown due to event:Unknown for the host id:${host.id}`);
    await report(host, { powerState: 'On' });
    expect(await listed(host)).toMatchObject({ powerstate: 'On' });
    // A reading made with an older configuration (before a new password reached the agent) is not taken.
    expect(watched.oobm!.configId).toBe((await getHost(host.id))!.oobm!.configId);
    await report(host, { powerState: 'Off', configId: 'an-older-configuration' });
    expect(await listed(host)).toMatchObject({ powerstate: 'On' });
  });

  it('stops handing out a BMC that is switched off, and its power state reads Disabled', async () => {
    expect((await run('disableOutOfBandManagementForHost', { hostid: host.id })).jobresult).toEqual({ outofbandmanagement: { enabled: false, status: true } });
    expect(await listed(host)).toMatchObject({ enabled: false, powerstate: 'Disabled' });
    const answerOf = await report(host, { powerState: 'On' });
    expect(answerOf.hosts.find((h) => h.hostId === host.id)!.oobm).toBeUndefined();
    expect(await listed(host)).toMatchObject({ powerstate: 'Disabled' });
    expect((await run('enableOutOfBandManagementForHost', { hostid: host.id })).jobstatus).toBe(1);
  });
});

describe('changeOutOfBandManagementPassword', () => {
  it('has the agent set the new password, and keeps it (sealed) only once the BMC took it', async () => {
    const failed = await start('changeOutOfBandManagementPassword', { hostid: host.id, password: NEW_PASSWORD });
    const first = await receiveCommand(seeded.agent.queueUrl);
    await answer(first, { error: 'OobmActionFailed', cause: `Failed to change out-of-band management password for host (${host.id}) with error: the BMC has no user named admin` });
    expect(await admin.waitForJob(failed)).toMatchObject({ jobstatus: 2, jobresult: { errorcode: 530 } });
    expect(openSealed(seeded.privateKeyPem, (await getHost(host.id))!.oobm!.password)).toBe(PASSWORD);

    const jobid = await start('changeOutOfBandManagementPassword', { hostid: host.id, password: NEW_PASSWORD });
    const message = await receiveCommand(seeded.agent.queueUrl);
    expect(message).toMatchObject({ type: 'oobmChangePassword', payload: { hostId: host.id, oobm: { username: 'admin' } } });
    const payload = message.payload as any;
    expect(openSealed(seeded.privateKeyPem, payload.oobm.password)).toBe(PASSWORD);
    expect(openSealed(seeded.privateKeyPem, payload.newPassword)).toBe(NEW_PASSWORD);
    await answer(message, { result: { changed: true } });
    expect(await admin.waitForJob(jobid)).toMatchObject({ jobstatus: 1, jobresult: { outofbandmanagement: { hostid: host.id, status: true } } });
    expect(openSealed(seeded.privateKeyPem, (await getHost(host.id))!.oobm!.password)).toBe(NEW_PASSWORD);
    const text = JSON.stringify(await allItems());
    expect(text).not.toContain(NEW_PASSWORD);
    expect(world.runtime.output()).not.toContain(NEW_PASSWORD);
    refused(await admin.call('changeOutOfBandManagementPassword', { hostid: host.id, password: 'x'.repeat(17) }), 'changeOutOfBandManagementPassword', 431, 'Invalid parameter password: an IPMI password has at most 16 characters');
  });
});
