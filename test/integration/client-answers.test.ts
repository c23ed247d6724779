// What clients ask that Mold answers for features it lacks, as upstream answers them when none are
// there: the login page's calls without a session, the LDAP configurations under upstream's envelope
// name, system VMs, the public address and NAT rule listings libcloud's list_nodes reads, and the
// extensions, dedicated resources and resource icons the web UI's pages ask for.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getDomain } from '../../shared/db/identity.ts';
import { send, type ApiClient } from '../support/client.ts';
import { seedMember } from '../support/members.ts';
import { useRuntimeEndpoints } from '../support/runtime.ts';
import { noEntity, ok, refused, startWorld, unique, type World } from './identity-fixtures.ts';

describe('answers clients rely on', () => {
  let world: World;
  let admin: ApiClient;
  let zone: any;

  beforeAll(async () => {
    world = await startWorld();
    admin = world.admin;
    zone = ok(await admin.call('createZone', { name: unique('cz'), networktype: 'Advanced', dns1: '192.0.2.53' }), 'createZone').zone;
  });
  afterAll(async () => {
    await world?.runtime.stop();
  });

  it('answers the login page without a session: themes and OAuth providers empty; listIdps and forgotPassword 401', async () => {
    for (const [command, envelope] of [['listGuiThemes', 'listguithemesresponse'], ['listOauthProvider', 'listoauthproviderresponse']]) {
      const answer = await send(world.runtime.apiUrl, [['command', command], ['response', 'json']], 'GET');
      expect(answer.status).toBe(200);
      expect(answer.body).toEqual({ [envelope]: {} });
    }
    for (const command of ['listIdps', 'forgotPassword']) {
      expect((await send(world.runtime.apiUrl, [['command', command], ['response', 'json']], 'POST')).status).toBe(401);
    }
  });

  it('lists no LDAP configurations, under upstream’s ldapconfigurationresponse', async () => {
    const answer = await admin.call('listLdapConfigurations', {});
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ ldapconfigurationresponse: {} });
  });

  it('lists no system VMs and no routers, refusing ids that name nothing', async () => {
    expect(ok(await admin.call('listSystemVms', { zoneid: zone.id }), 'listSystemVms')).toEqual({});
    expect(ok(await admin.call('listRouters', { zoneid: zone.id, listall: true }), 'listRouters')).toEqual({});
    const nothing = randomUUID();
    refused(await admin.call('listRouters', { networkid: nothing }), 'listRouters', 431, noEntity('listrouters', 'networkid', nothing));
    const missing = randomUUID();
    refused(await admin.call('listSystemVms', { zoneid: missing }), 'listSystemVms', 431, noEntity('listsystemvms', 'zoneid', missing));
    refused(await admin.call('listSystemVms', { id: missing }), 'listSystemVms', 431, noEntity('listsystemvms', 'id', missing));
  });

  it('lists no extensions, to root admins only, checking the details asked for and refusing an id that names nothing', async () => {
    expect(ok(await admin.call('listExtensions', {}), 'listExtensions')).toEqual({});
    expect(ok(await admin.call('listExtensions', { details: 'min,resources', name: 'any' }), 'listExtensions')).toEqual({});
    refused(await admin.call('listExtensions', { details: 'all,some' }), 'listExtensions', 431, 'The details parameter contains a non permitted value.The allowed values are [all, resources, external, min]');
    const missing = randomUUID();
    refused(await admin.call('listExtensions', { id: missing }), 'listExtensions', 431, noEntity('listextensions', 'id', missing));
    useRuntimeEndpoints(world.runtime);
    const user = await seedMember(world.runtime.apiUrl, unique('cu'), (await getDomain(world.rootDomainId))!, 'User');
    expect((await user.client.call('listExtensions', {})).status).toBe(432);
    // Icons: none for anything, to any caller; both parameters are required.
    expect(ok(await user.client.call('listResourceIcon', { resourceids: zone.id, resourcetype: 'Zone' }), 'listResourceIcon')).toEqual({});
    refused(await user.client.call('listResourceIcon', { resourceids: zone.id }), 'listResourceIcon', 431, 'Unable to execute API command listresourceicon due to missing parameter resourcetype');
  });

  it('lists no dedicated zones, pods, clusters or hosts, refusing ids that name nothing', async () => {
    for (const [command, id] of [['listDedicatedZones', 'zoneid'], ['listDedicatedPods', 'podid'], ['listDedicatedClusters', 'clusterid'], ['listDedicatedHosts', 'hostid']]) {
      expect(ok(await admin.call(command, {}), command)).toEqual({});
      expect(ok(await admin.call(command, { domainid: world.rootDomainId }), command)).toEqual({});
      const missing = randomUUID();
      refused(await admin.call(command, { [id]: missing }), command, 431, noEntity(command.toLowerCase(), id, missing));
      refused(await admin.call(command, { affinitygroupid: missing }), command, 431, noEntity(command.toLowerCase(), 'affinitygroupid', missing));
    }
    expect(ok(await admin.call('listDedicatedZones', { zoneid: zone.id }), 'listDedicatedZones')).toEqual({});
  });

  it('lists no public addresses or NAT rules on shared networks, refusing ids that name nothing', async () => {
    for (const command of ['listPublicIpAddresses', 'listPortForwardingRules', 'listIpForwardingRules']) {
      expect(ok(await admin.call(command, {}), command)).toEqual({});
      expect(ok(await admin.call(command, { listall: true, page: 1, pagesize: 10 }), command)).toEqual({});
      const missing = randomUUID();
      refused(await admin.call(command, { id: missing }), command, 431, noEntity(command.toLowerCase(), 'id', missing));
    }
    expect(ok(await admin.call('listPublicIpAddresses', { zoneid: zone.id, allocatedonly: false }), 'listPublicIpAddresses')).toEqual({});
    const missing = randomUUID();
    refused(await admin.call('listPublicIpAddresses', { zoneid: missing }), 'listPublicIpAddresses', 431, noEntity('listpublicipaddresses', 'zoneid', missing));
  });
});
