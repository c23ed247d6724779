// listVirtualMachines through /client/api over VM records seeded through the repository layer:
// upstream's UserVmResponse fields, every filter, scoping per role (a User sees only its own
// account's VMs and never Destroyed ones; a domain admin its subtree; the root admin everything,
// Destroyed ones and instance names included), details, paging, and every refusal.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAffinityGroupRecord, type AffinityGroup } from '../../shared/db/affinity-groups.ts';
import { createHostRecord, type Host } from '../../shared/db/hosts.ts';
import { getDomain, type Domain } from '../../shared/db/identity.ts';
import { createCluster, createPod, getZone } from '../../shared/db/infrastructure.ts';
import { type Template } from '../../shared/db/templates.ts';
import { transitionVm, type VirtualMachine } from '../../shared/db/vms.ts';
import { NONE_OS_TYPE } from '../../shared/catalogue/os-types.ts';
import type { ApiClient } from '../support/client.ts';
import { seedMember, type Member } from '../support/members.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { seedTemplate, seedVm } from '../support/vm-seed.ts';
import { noEntity, ok, refused, startWorld, unique, type World } from './identity-fixtures.ts';
import { patience } from '../support/wait.ts';

const API = 'listVirtualMachines';

let world: World;
let admin: ApiClient;
let rootDomain: Domain;
let sub: Domain;
let userA: Member;
let userB: Member;
let userC: Member;
let domainAdmin: Member;
let zone: any;
let otherZone: any;
let network: any;
let offering: any;
let template: Template;
let host: Host;
let group: AffinityGroup;
const vms: Record<string, VirtualMachine> = {};

const list = async (client: ApiClient, params: Record<string, string | number | boolean> = {}) => ok(await client.call(API, params), API);
const names = (body: any) => ((body.virtualmachine ?? []) as any[]).map((vm) => vm.name).sort();

beforeAll(async () => {
  world = await startWorld();
  admin = world.admin;
  useRuntimeEndpoints(world.runtime);
  rootDomain = (await getDomain(world.rootDomainId))!;
  const subdomain = ok(await admin.call('createDomain', { name: unique('vmsub') }), 'createDomain').domain;
  sub = (await getDomain(subdomain.id))!;
  [userA, userB, userC, domainAdmin] = await Promise.all([
    seedMember(world.runtime.apiUrl, unique('ua'), rootDomain, 'User'),
    seedMember(world.runtime.apiUrl, unique('ub'), rootDomain, 'User'),
    seedMember(world.runtime.apiUrl, unique('uc'), sub, 'User'),
    seedMember(world.runtime.apiUrl, unique('da'), sub, 'Domain Admin'),
  ]);

  zone = ok(await admin.call('createZone', { name: unique('lz'), networktype: 'Advanced', dns1: '8.8.8.8' }), 'createZone').zone;
  otherZone = ok(await admin.call('createZone', { name: unique('lz'), networktype: 'Advanced', dns1: '8.8.8.8' }), 'createZone').zone;
  const physical = ok(await admin.call('createPhysicalNetwork', { zoneid: zone.id, name: unique('lphys'), vlan: '300-399' }), 'createPhysicalNetwork');
  expect((await admin.waitForJob(physical.jobid)).jobstatus).toBe(1);
  const networkOffering = ok(await admin.call('listNetworkOfferings', { name: 'DefaultSharedNetworkOffering' }), 'listNetworkOfferings').networkoffering[0].id;
  network = ok(
    await admin.call('createNetwork', {
      name: unique('ln'),
      networkofferingid: networkOffering,
      zoneid: zone.id,
      vlan: 211,
      gateway: '10.30.0.1',
      netmask: '255.255.255.0',
      startip: '10.30.0.10',
      endip: '10.30.0.99',
    }),
    'createNetwork',
  ).network;
  offering = ok(await admin.call('createServiceOffering', { name: unique('so'), displaytext: 'Small', cpunumber: 2, cpuspeed: 1500, memory: 1024 }), 'createServiceOffering').serviceoffering;
  const pod = await createPod((await getZone(zone.id))!, { name: unique('lp'), allocationstate: 'Enabled' });
  const cluster = await createCluster(pod, { name: unique('lc'), allocationstate: 'Enabled', hypervisor: 'KVM' });
  host = await createHostRecord(cluster, { name: unique('lh'), ipaddress: '10.2.0.1' });
  template = await seedTemplate({ accountId: userA.account.id, domain: rootDomain }, zone.id, unique('tmpl'), 'Ubuntu for tests');
  group = await createAffinityGroupRecord({ name: unique('ag'), description: 'spread', type: 'host anti-affinity', accountId: userA.account.id, domainId: rootDomain.id, domainTree: rootDomain.tree });

  const owner = (m: Member) => ({ ...m.account, userId: m.user.id });
  const base = { zoneId: zone.id, serviceOfferingId: offering.id, templateId: template.id, cpuNumber: 2, cpuSpeed: 1500, memoryMiB: 1024 };
  vms.a1 = await seedVm(owner(userA), {
    ...base,
    name: 'web-one',
    displayName: 'Web One',
    group: 'web',
    hostId: host.id,
    podId: host.podId,
    clusterId: host.clusterId,
    haEnable: true,
    keypairs: ['k1', 'k2'],
    userData: Buffer.from('#cloud-config\n').toString('base64'),
    affinityGroupIds: [group.id],
    details: { cpuOvercommitRatio: '2', rootDiskController: 'virtio' },
    nics: [{ id: randomUUID(), networkId: network.id, mac: '02:00:11:22:33:44', ip: '10.30.0.10', netmask: '255.255.255.0', gateway: '10.30.0.1', vlan: 211, isDefault: true }],
  });
  vms.a2 = await seedVm(owner(userA), { ...base, name: 'db-one', state: 'Stopped', lastHostId: host.id });
  vms.a3 = await seedVm(owner(userA), { ...base, name: 'dead-a', state: 'Destroyed' });
  vms.b1 = await seedVm(owner(userB), { ...base, name: 'web-two', zoneId: otherZone.id });
  vms.c1 = await seedVm(owner(userC), { ...base, name: 'sub-one' });
  vms.c2 = await seedVm(owner(userC), { ...base, name: 'dead-c', state: 'Destroyed' });
}, patience(90_000));

afterAll(async () => {
  await world?.runtime.stop();
});

describe('listVirtualMachines: the response', () => {
  it('renders upstream’s UserVmResponse for the owner (Restricted view)', async () => {
    const body = await list(userA.client, { id: vms.a1.id });
    expect(body.count).toBe(1);
    const vm = body.virtualmachine[0];
    expect(vm).toEqual({
      id: vms.a1.id,
      name: 'web-one',
      displayname: 'Web One',
      account: userA.account.name,
      userid: userA.user.id,
      username: userA.user.username,
      domainid: rootDomain.id,
      domain: rootDomain.name,
      domainpath: rootDomain.path,
      created: vms.a1.created,
      state: 'Running',
      haenable: true,
      group: 'web',
      zoneid: zone.id,
      zonename: zone.name,
      templateid: template.id,
      templatename: template.name,
      templatetype: 'USER',
      templatedisplaytext: 'Ubuntu for tests',
      passwordenabled: false,
      serviceofferingid: offering.id,
      serviceofferingname: offering.name,
      cpunumber: 2,
      cpuspeed: 1500,
      memory: 1024,
      guestosid: NONE_OS_TYPE.id,
      rootdeviceid: 0,
      rootdevicetype: 'ROOT',
      securitygroup: [],
      nic: [
        {
          id: vms.a1.nics[0].id,
          networkid: network.id,
          networkname: network.name,
          netmask: '255.255.255.0',
          gateway: '10.30.0.1',
          ipaddress: '10.30.0.10',
          isolationuri: 'vlan://211',
          broadcasturi: 'vlan://211',
          traffictype: 'Guest',
          type: 'Shared',
          isdefault: true,
          macaddress: '02:00:11:22:33:44',
          deviceid: '0',
          secondaryip: [],
          extradhcpoption: [],
        },
      ],
      hypervisor: 'KVM',
      keypairs: 'k1,k2',
      // cpuOvercommitRatio is among user.vm.denied.details: users do not see it.
      details: { rootDiskController: 'virtio' },
      readonlydetails: 'dataDiskController, rootDiskController',
      ostypeid: NONE_OS_TYPE.id,
      osdisplayname: NONE_OS_TYPE.description,
      affinitygroup: [{ id: group.id, name: group.name, description: 'spread', account: userA.account.name }],
      displayvm: true,
      isdynamicallyscalable: false,
      tags: [],
    });
  });

  it('gives the root admin the Full view: instance name, host, every detail', async () => {
    const vm = (await list(admin, { id: vms.a1.id })).virtualmachine[0];
    expect(vm.instancename).toBe(vms.a1.instanceName);
    expect(vm.instancename).toMatch(/^i-\d+-\d+-VM$/);
    expect(vm.hostid).toBe(host.id);
    expect(vm.hostname).toBe(host.name);
    expect(vm.details).toEqual({ cpuOvercommitRatio: '2', rootDiskController: 'virtio' });
    expect(vm.readonlydetails).toBeUndefined();
    // A stopped VM has no host.
    const stopped = (await list(admin, { id: vms.a2.id })).virtualmachine[0];
    expect(stopped.hostid).toBeUndefined();
    expect(stopped.state).toBe('Stopped');
  });

  it('returns user data only when asked', async () => {
    expect((await list(userA.client, { id: vms.a1.id })).virtualmachine[0].userdata).toBeUndefined();
    expect((await list(userA.client, { id: vms.a1.id, userdata: true })).virtualmachine[0].userdata).toBe(vms.a1.userData);
  });

  it('limits the fields to the details asked for', async () => {
    const min = (await list(userA.client, { id: vms.a1.id, details: 'min' })).virtualmachine[0];
    expect(min.nic).toBeUndefined();
    expect(min.templateid).toBeUndefined();
    expect(min.serviceofferingid).toBeUndefined();
    expect(min.affinitygroup).toBeUndefined();
    expect(min.group).toBeUndefined();
    expect(min).toMatchObject({ id: vms.a1.id, name: 'web-one', state: 'Running', zoneid: zone.id });
    const some = (await list(userA.client, { id: vms.a1.id, details: 'nics,tmpl' })).virtualmachine[0];
    expect(some.nic).toHaveLength(1);
    expect(some.templateid).toBe(template.id);
    expect(some.serviceofferingid).toBeUndefined();
    expect(some.cpunumber).toBeUndefined();
  });

  it('follows the records: a state change shows at once', async () => {
    await transitionVm(vms.b1.id, ['Running'], 'Stopping');
    expect((await list(admin, { id: vms.b1.id })).virtualmachine[0].state).toBe('Stopping');
    await transitionVm(vms.b1.id, ['Stopping'], 'Running');
    expect((await list(admin, { id: vms.b1.id })).virtualmachine[0].state).toBe('Running');
  });
});

describe('listVirtualMachines: who sees what', () => {
  it('a User sees only its own account’s VMs, never Destroyed ones, listall or not', async () => {
    expect(names(await list(userA.client))).toEqual(['db-one', 'web-one']);
    expect((await list(userA.client)).count).toBe(2);
    expect(names(await list(userA.client, { listall: true }))).toEqual(['db-one', 'web-one']);
    expect(await list(userA.client, { state: 'Destroyed' })).toEqual({});
    expect(await list(userA.client, { id: vms.a3.id })).toEqual({});
    expect(await list(userA.client, { id: vms.b1.id })).toEqual({});
    expect(names(await list(userC.client))).toEqual(['sub-one']);
  });

  it('a User cannot name another account', async () => {
    refused(await userA.client.call(API, { account: userB.account.name }), API, 531, /does not have permission/);
    refused(await userA.client.call(API, { account: userB.account.name, domainid: rootDomain.id }), API, 531, /does not have permission/);
  });

  it('the root admin sees every VM with listall, Destroyed ones included, and only its own without', async () => {
    expect(names(await list(admin, { listall: true }))).toEqual(['db-one', 'dead-a', 'dead-c', 'sub-one', 'web-one', 'web-two']);
    expect(await list(admin)).toEqual({});
    expect(names(await list(admin, { state: 'Destroyed', listall: true }))).toEqual(['dead-a', 'dead-c']);
  });

  it('a domain admin sees its subtree (Destroyed included), and nothing above it', async () => {
    expect(names(await list(domainAdmin.client, { listall: true }))).toEqual(['dead-c', 'sub-one']);
    expect(names(await list(domainAdmin.client, { domainid: sub.id }))).toEqual(['dead-c', 'sub-one']);
    expect(names(await list(domainAdmin.client, { account: userC.account.name, domainid: sub.id }))).toEqual(['dead-c', 'sub-one']);
    refused(await domainAdmin.client.call(API, { domainid: rootDomain.id }), API, 531, /does not have permission/);
    // Not the Full view.
    expect((await list(domainAdmin.client, { listall: true })).virtualmachine[0].instancename).toBeUndefined();
  });

  it('scopes by account and domain for admins', async () => {
    expect(names(await list(admin, { account: userA.account.name, domainid: rootDomain.id }))).toEqual(['db-one', 'dead-a', 'web-one']);
    expect(names(await list(admin, { domainid: rootDomain.id }))).toEqual(['db-one', 'dead-a', 'web-one', 'web-two']);
    expect(names(await list(admin, { domainid: rootDomain.id, isrecursive: true }))).toEqual(['db-one', 'dead-a', 'dead-c', 'sub-one', 'web-one', 'web-two']);
    expect(names(await list(admin, { domainid: sub.id }))).toEqual(['dead-c', 'sub-one']);
  });
});

describe('listVirtualMachines: filters', () => {
  const all = (params: Record<string, string | number | boolean>) => list(admin, { listall: true, ...params });

  it('by state (case-insensitive; Present is every state but Destroyed)', async () => {
    expect(names(await all({ state: 'Running' }))).toEqual(['sub-one', 'web-one', 'web-two']);
    expect(names(await all({ state: 'stopped' }))).toEqual(['db-one']);
    expect(names(await all({ state: 'Present' }))).toEqual(['db-one', 'sub-one', 'web-one', 'web-two']);
    expect(await all({ state: 'Expunged' })).toEqual({});
  });

  it('by zone, host, name, keyword, id and ids', async () => {
    expect(names(await all({ zoneid: otherZone.id }))).toEqual(['web-two']);
    expect(names(await all({ hostid: host.id }))).toEqual(['web-one']);
    expect(names(await all({ name: 'web' }))).toEqual(['web-one', 'web-two']);
    expect(names(await all({ keyword: 'ONE' }))).toEqual(['db-one', 'sub-one', 'web-one']);
    expect(names(await all({ keyword: '10.30.0.10' }))).toEqual(['web-one']);
    expect(names(await all({ keyword: 'Stopped' }))).toEqual(['db-one']);
    expect(names(await all({ keyword: vms.a2.instanceName }))).toEqual(['db-one']);
    expect(names(await all({ id: vms.c1.id }))).toEqual(['sub-one']);
    expect(names(await all({ ids: `${vms.c1.id},${vms.b1.id}` }))).toEqual(['sub-one', 'web-two']);
  });

  it('by template, offering, network, affinity group, key pair, user and HA', async () => {
    expect((await all({ templateid: template.id })).count).toBe(6);
    expect((await all({ serviceofferingid: offering.id })).count).toBe(6);
    expect(names(await all({ networkid: network.id }))).toEqual(['web-one']);
    expect(names(await all({ affinitygroupid: group.id }))).toEqual(['web-one']);
    expect(names(await all({ keypair: 'k2' }))).toEqual(['web-one']);
    expect(names(await all({ userid: userC.user.id }))).toEqual(['dead-c', 'sub-one']);
    expect(names(await all({ haenable: true }))).toEqual(['web-one']);
    expect((await all({ haenable: false })).count).toBe(5);
  });

  it('ignores hostid for callers other than the root admin (not a parameter of their command)', async () => {
    expect(names(await list(userA.client, { hostid: host.id }))).toEqual(['db-one', 'web-one']);
  });

  it('pages in number order with the total count', async () => {
    const first = await all({ page: 1, pagesize: 4 });
    expect(first.count).toBe(6);
    expect(first.virtualmachine.map((vm: any) => vm.id)).toEqual([vms.a1, vms.a2, vms.a3, vms.b1].map((vm) => vm.id));
    const second = await all({ page: 2, pagesize: 4 });
    expect(second.count).toBe(6);
    expect(second.virtualmachine.map((vm: any) => vm.id)).toEqual([vms.c1.id, vms.c2.id]);
    refused(await admin.call(API, { listall: true, pagesize: 501 }), API, 431, "Page size can't exceed max allowed page size value: 500");
  });
});

describe('listVirtualMachines: refusals', () => {
  it('refuses ids that name nothing, naming the parameter', async () => {
    const missing = randomUUID();
    for (const name of ['id', 'zoneid', 'hostid', 'templateid', 'serviceofferingid', 'networkid', 'affinitygroupid', 'userid']) {
      refused(await admin.call(API, { [name]: missing }), API, 431, noEntity(API.toLowerCase(), name, missing));
    }
    refused(await admin.call(API, { zoneid: 'not-a-uuid' }), API, 431, /Invalid parameter zoneid value=not-a-uuid/);
  });

  it('refuses id with ids, and unknown details', async () => {
    refused(await admin.call(API, { id: vms.a1.id, ids: vms.a2.id }), API, 431, 'Either id or ids parameter can be passed, not both');
    refused(
      await admin.call(API, { details: 'all,bogus' }),
      API,
      431,
      'The details parameter contains a non permitted value. The allowed values are [all, group, nics, stats, secgrp, tmpl, servoff, diskoff, backoff, iso, volume, min, affgrp]',
    );
  });
});

describe('listVirtualMachinesMetrics and listVolumesMetrics', () => {
  it('answer the listing’s rows with upstream’s metrics figures, to the same callers', async () => {
    const plain = (await list(userA.client, { id: vms.a1.id })).virtualmachine[0];
    const metrics = ok(await userA.client.call('listVirtualMachinesMetrics', { id: vms.a1.id }), 'listVirtualMachinesMetrics');
    expect(metrics).toEqual({ count: 1, virtualmachine: [{ ...plain, ipaddress: '10.30.0.10', cputotal: '3.0 Ghz', memorytotal: '1.00 GiB' }] });
    // The same scope as the listing: another user's VM is not there.
    expect(ok(await userB.client.call('listVirtualMachinesMetrics', { id: vms.a1.id }), 'listVirtualMachinesMetrics')).toEqual({});
    const volumes = ok(await userA.client.call('listVolumes', {}), 'listVolumes').volume ?? [];
    const volumeMetrics = ok(await userA.client.call('listVolumesMetrics', {}), 'listVolumesMetrics').volume ?? [];
    expect(volumeMetrics.length).toBe(volumes.length);
    for (const [index, volume] of volumes.entries()) {
      expect(volumeMetrics[index]).toEqual({
        ...volume,
        sizegb: `${(volume.size / 1024 ** 3).toFixed(2)} GiB`,
        ...(volume.storagetype && { storagetype: `${volume.storagetype[0].toUpperCase()}${volume.storagetype.slice(1)} (${volume.type})` }),
      });
    }
  });
});
