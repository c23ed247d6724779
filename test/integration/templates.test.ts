// Templates, ISOs and the OS catalogue through /client/api: registerTemplate, listTemplates with
// every templatefilter, updateTemplate, updateTemplatePermissions, the deleteTemplate job,
// registerIso, listIsos, listOsTypes and listOsCategories, with upstream's shapes, scoping and
// refusals. Download states are driven through the repository, as the agent will.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OS_CATEGORIES, OS_TYPES } from '../../shared/catalogue/os-types.ts';
import { createDomain, findUserByApiKey, getDomain, type Domain } from '../../shared/db/identity.ts';
import type { Zone } from '../../shared/db/infrastructure.ts';
import { markTemplateDownloaded, markTemplateDownloading, markTemplateFailed } from '../../shared/db/templates.ts';
import { ApiClient, type ApiAnswer } from '../support/client.ts';
import { seedMember, type Member } from '../support/members.ts';
import { startRuntime, useRuntimeEndpoints, type RunningRuntime } from '../support/runtime.ts';
import { seedZone } from '../support/zones.ts';

const DATE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\+0000$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ubuntu = OS_TYPES.find((type) => type.description === 'Ubuntu 22.04 LTS')!;
const debian = OS_TYPES.find((type) => type.description === 'Debian GNU/Linux 12 (64-bit)')!;

let runtime: RunningRuntime;
let admin: ApiClient;
let root: Domain;
let zone1: Zone;
let zone2: Zone;
let disabledZone: Zone;
let alice: Member;
let bob: Member;
let subAdmin: Member;

function ok(answer: ApiAnswer, command: string): any {
  if (answer.status !== 200) throw new Error(`${command}: HTTP ${answer.status} ${JSON.stringify(answer.body)}`);
  return answer.body[`${command.toLowerCase()}response`];
}

function refused(answer: ApiAnswer, command: string, errorcode: number, errortext: string | RegExp, cserrorcode?: number) {
  const body = answer.body[`${command.toLowerCase()}response`];
  expect(answer.status, JSON.stringify(answer.body)).toBe(errorcode);
  expect(body.errorcode).toBe(errorcode);
  if (cserrorcode !== undefined) expect(body.cserrorcode).toBe(cserrorcode);
  if (typeof errortext === 'string') expect(body.errortext).toBe(errortext);
  else expect(body.errortext).toMatch(errortext);
}

const noEntity = (api: string, name: string, value: string) =>
  `Unable to execute API command ${api} due to invalid value. Invalid parameter ${name} value=${value} due to incorrect long value format, or entity does not exist or due to incorrect parameter annotation for the field in api cmd class.`;

let counter = 0;
const unique = (prefix: string) => `${prefix}-${++counter}-${Math.random().toString(36).slice(2, 7)}`;

async function register(client: ApiClient, fields: Record<string, string | number | boolean> = {}) {
  const answer = await client.call('registerTemplate', {
    name: unique('tpl'),
    url: 'http://images.example.com/ubuntu-22.04.qcow2',
    format: 'QCOW2',
    hypervisor: 'KVM',
    zoneid: zone1.id,
    ostypeid: ubuntu.id,
    ...fields,
  });
  const body = ok(answer, 'registerTemplate');
  return body.template[0];
}

async function listTemplates(client: ApiClient, params: Record<string, string | number | boolean>) {
  const body = ok(await client.call('listTemplates', params), 'listTemplates');
  return { count: body.count ?? 0, items: (body.template ?? []) as any[] };
}

const ids = (items: any[]) => items.map((item) => item.id);

/** Everything the admin can see, to prove refusals change nothing. */
async function snapshot() {
  const templates = await listTemplates(admin, { templatefilter: 'all' });
  const isos = ok(await admin.call('listIsos', { isofilter: 'all' }), 'listIsos');
  return JSON.stringify({ templates: templates.items, isos: isos.iso ?? [] });
}

beforeAll(async () => {
  runtime = await startRuntime();
  useRuntimeEndpoints(runtime);
  admin = new ApiClient(runtime.apiUrl, runtime.credentials);
  const adminUser = (await findUserByApiKey(runtime.credentials.apikey))!;
  root = (await getDomain(adminUser.domainId))!;
  const sub = await createDomain({ name: 'tplsub', parent: root });
  [zone1, zone2, disabledZone] = await Promise.all([seedZone('zone-one'), seedZone('zone-two'), seedZone('zone-off', { allocationstate: 'Disabled' })]);
  [alice, bob, subAdmin] = await Promise.all([
    seedMember(runtime.apiUrl, 'talice', root, 'User'),
    seedMember(runtime.apiUrl, 'tbob', root, 'User'),
    seedMember(runtime.apiUrl, 'tsubadmin', sub, 'Domain Admin'),
  ]);
});

afterAll(async () => {
  await runtime?.stop();
});

describe('OS catalogue', () => {
  it('lists the shipped categories with upstream fields, by id, name and keyword, with paging', async () => {
    const all = ok(await bob.client.call('listOsCategories'), 'listOsCategories');
    expect(all.count).toBe(OS_CATEGORIES.length);
    const names = all.oscategory.map((c: any) => c.name);
    for (const name of ['CentOS', 'Debian', 'Ubuntu', 'Windows', 'Other', 'RedHat', 'SUSE', 'Oracle', 'Novel', 'Unix', 'FreeBSD']) expect(names).toContain(name);
    const debianCategory = all.oscategory.find((c: any) => c.name === 'Debian');
    expect(debianCategory).toEqual({ id: expect.stringMatching(UUID), name: 'Debian' });
    expect(ok(await bob.client.call('listOsCategories', { id: debianCategory.id }), 'listOsCategories')).toEqual({ count: 1, oscategory: [debianCategory] });
    expect(ok(await bob.client.call('listOsCategories', { name: 'ubun' }), 'listOsCategories').oscategory.map((c: any) => c.name)).toEqual(['Ubuntu']);
    expect(ok(await bob.client.call('listOsCategories', { keyword: 'WIN' }), 'listOsCategories').oscategory.map((c: any) => c.name)).toEqual(['Windows']);
    const paged = ok(await bob.client.call('listOsCategories', { page: 2, pagesize: 3 }), 'listOsCategories');
    expect(paged.count).toBe(OS_CATEGORIES.length);
    expect(paged.oscategory.map((c: any) => c.name)).toEqual(names.slice(3, 6));
    expect(ok(await bob.client.call('listOsCategories', { name: 'nothing-like-this' }), 'listOsCategories')).toEqual({});
    const ghost = crypto.randomUUID();
    refused(await bob.client.call('listOsCategories', { id: ghost }), 'listOsCategories', 431, noEntity('listoscategories', 'id', ghost));
  });

  it('lists OS types with upstream fields, filtered by id, category, description and keyword', async () => {
    const all = ok(await bob.client.call('listOsTypes'), 'listOsTypes');
    expect(all.count).toBe(OS_TYPES.length);
    const descriptions = all.ostype.map((t: any) => t.description);
    for (const d of ['Ubuntu 22.04 LTS', 'Debian GNU/Linux 12 (64-bit)', 'Other Linux (64-bit)', 'Windows Server 2022 (64-bit)']) expect(descriptions).toContain(d);
    const one = ok(await bob.client.call('listOsTypes', { id: ubuntu.id }), 'listOsTypes');
    expect(one).toEqual({
      count: 1,
      ostype: [
        {
          id: ubuntu.id,
          name: 'Ubuntu 22.04 LTS',
          description: 'Ubuntu 22.04 LTS',
          oscategoryid: ubuntu.oscategoryid,
          oscategoryname: 'Ubuntu',
          isuserdefined: 'false',
          fordisplay: true,
        },
      ],
    });
    const debians = ok(await bob.client.call('listOsTypes', { oscategoryid: debian.oscategoryid }), 'listOsTypes');
    expect(debians.ostype.every((t: any) => t.oscategoryname === 'Debian')).toBe(true);
    expect(debians.ostype.map((t: any) => t.description)).toContain('Debian GNU/Linux 12 (64-bit)');
    expect(ok(await bob.client.call('listOsTypes', { description: 'windows server 2022' }), 'listOsTypes').ostype.map((t: any) => t.description)).toEqual([
      'Windows Server 2022 (64-bit)',
    ]);
    expect(ok(await bob.client.call('listOsTypes', { keyword: 'Other Linux' }), 'listOsTypes').count).toBe(2);
    expect(ok(await bob.client.call('listOsTypes', { pagesize: 5 }), 'listOsTypes').ostype).toHaveLength(5);
    const ghost = crypto.randomUUID();
    refused(await bob.client.call('listOsTypes', { id: ghost }), 'listOsTypes', 431, noEntity('listostypes', 'id', ghost));
    refused(await bob.client.call('listOsTypes', { oscategoryid: ghost }), 'listOsTypes', 431, noEntity('listostypes', 'oscategoryid', ghost));
    refused(await bob.client.call('listOsTypes', { id: 'nope' }), 'listOsTypes', 431, /id/);
  });
});

describe('registerTemplate', () => {
  it('registers a template with upstream fields, download pending, and records TEMPLATE.CREATE', async () => {
    const name = unique('admin-tpl');
    const answer = await admin.call('registerTemplate', {
      name,
      displaytext: 'Ubuntu 22.04 cloud image',
      url: 'https://images.example.com/jammy.qcow2',
      format: 'qcow2',
      hypervisor: 'kvm',
      zoneid: zone1.id,
      ostypeid: ubuntu.id,
      ispublic: true,
      isfeatured: true,
      passwordenabled: true,
      sshkeyenabled: true,
      isextractable: true,
      checksum: `{SHA-256}${'ab'.repeat(32)}`,
    });
    const body = ok(answer, 'registerTemplate');
    expect(Object.keys(answer.body)).toEqual(['registertemplateresponse']);
    expect(body.count).toBe(1);
    expect(body.template[0]).toEqual({
      id: expect.stringMatching(UUID),
      name,
      displaytext: 'Ubuntu 22.04 cloud image',
      ispublic: true,
      created: expect.stringMatching(DATE),
      isready: false,
      passwordenabled: true,
      format: 'QCOW2',
      isfeatured: true,
      crossZones: false,
      ostypeid: ubuntu.id,
      ostypename: 'Ubuntu 22.04 LTS',
      account: 'admin',
      domainid: root.id,
      domain: 'ROOT',
      domainpath: 'ROOT',
      zoneid: zone1.id,
      zonename: 'zone-one',
      status: 'Download pending',
      templatetype: 'USER',
      hypervisor: 'KVM',
      isextractable: true,
      checksum: 'ab'.repeat(32),
      details: {},
      bits: 64,
      sshkeyenabled: true,
      isdynamicallyscalable: false,
      directdownload: false,
      deployasis: false,
      requireshvm: true,
      downloaddetails: [],
      url: 'https://images.example.com/jammy.qcow2',
      tags: [],
      hasannotations: false,
      arch: 'x86_64',
    });
    const events = ok(await admin.call('listEvents', { type: 'TEMPLATE.CREATE' }), 'listEvents');
    expect(events.event.some((e: any) => e.resourceid === body.template[0].id && e.description.includes(name))).toBe(true);
  });

  it('registers for several zones (one row per zone) and for all zones (crossZones)', async () => {
    const multi = ok(
      await admin.call('registerTemplate', {
        name: unique('multi'),
        url: 'http://images.example.com/a.raw',
        format: 'RAW',
        hypervisor: 'KVM',
        zoneids: `${zone1.id},${zone2.id}`,
        ostypeid: debian.id,
      }),
      'registerTemplate',
    );
    expect(multi.count).toBe(2);
    expect(multi.template.map((t: any) => t.zonename).sort()).toEqual(['zone-one', 'zone-two']);
    expect(multi.template[0]).toMatchObject({ format: 'RAW', displaytext: multi.template[0].name, ispublic: false, isfeatured: false });
    const everywhere = ok(
      await admin.call('registerTemplate', { name: unique('all'), url: 'http://x.example/a.qcow2', format: 'QCOW2', hypervisor: 'KVM', zoneid: -1, ostypeid: ubuntu.id }),
      'registerTemplate',
    );
    expect(everywhere.template.every((t: any) => t.crossZones === true)).toBe(true);
    expect(everywhere.template.map((t: any) => t.zonename).sort()).toEqual(['zone-off', 'zone-one', 'zone-two']);
  });

  it('lets a user register its own template: private by default, never featured, public when asked', async () => {
    const own = await register(alice.client, { isfeatured: true });
    expect(own).toMatchObject({ account: 'talice', ispublic: false, isfeatured: false, status: 'Download pending', isready: false });
    const open = await register(alice.client, { ispublic: true });
    expect(open.ispublic).toBe(true);
  });

  it('refuses bad registrations with upstream texts and changes nothing', async () => {
    const before = await snapshot();
    const base = { name: 'x', url: 'http://images.example.com/x.qcow2', format: 'QCOW2', hypervisor: 'KVM', zoneid: zone1.id, ostypeid: ubuntu.id };
    const without = (name: string) => Object.fromEntries(Object.entries(base).filter(([k]) => k !== name));
    for (const name of ['name', 'url', 'format', 'hypervisor']) {
      refused(await admin.call('registerTemplate', without(name)), 'registerTemplate', 431, `Unable to execute API command registertemplate due to missing parameter ${name}`);
    }
    refused(await admin.call('registerTemplate', without('ostypeid')), 'registerTemplate', 431, 'Please provide a guest OS type', 9999);
    refused(await admin.call('registerTemplate', without('zoneid')), 'registerTemplate', 431, 'Either zoneid or zoneids is required. Both cannot be null.', 9999);
    refused(
      await admin.call('registerTemplate', { ...base, zoneids: zone2.id }),
      'registerTemplate',
      431,
      'Both zoneid and zoneids cannot be specified at the same time',
    );
    refused(
      await admin.call('registerTemplate', { ...without('zoneid'), zoneids: `-1,${zone1.id}` }),
      'registerTemplate',
      431,
      'Parameter zoneids cannot combine all zones (-1) option with other zones',
    );
    const ghost = crypto.randomUUID();
    refused(await admin.call('registerTemplate', { ...base, zoneid: ghost }), 'registerTemplate', 431, noEntity('registertemplate', 'zoneid', ghost));
    refused(await admin.call('registerTemplate', { ...base, ostypeid: ghost }), 'registerTemplate', 431, noEntity('registertemplate', 'ostypeid', ghost));
    refused(await admin.call('registerTemplate', { ...base, format: 'VHDX' }), 'registerTemplate', 431, 'Image format: VHDX is incorrect. Supported formats are QCOW2, RAW');
    refused(
      await admin.call('registerTemplate', { ...base, hypervisor: 'VMware' }),
      'registerTemplate',
      431,
      'Hypervisor Type: VMware is invalid. Supported Hypervisor types are: KVM',
    );
    refused(await admin.call('registerTemplate', { ...base, url: 'file:///etc/passwd' }), 'registerTemplate', 431, 'File:// type urls are currently unsupported');
    refused(await admin.call('registerTemplate', { ...base, url: 'ftp://x.example/a.qcow2' }), 'registerTemplate', 431, 'Unsupported scheme for url: ftp://x.example/a.qcow2');
    refused(
      await admin.call('registerTemplate', { ...base, checksum: '{SHA256}abcd' }),
      'registerTemplate',
      431,
      'Algorithm SHA256 was provided but it is not one of the supported algorithms',
      9999,
    );
    refused(await admin.call('registerTemplate', { ...base, checksum: 'abcd' }), 'registerTemplate', 431, 'Checksum digest length should be 32 instead of 4');
    refused(await admin.call('registerTemplate', { ...base, checksum: 'z'.repeat(32) }), 'registerTemplate', 431, /not a hexadecimal value/);
    refused(await admin.call('registerTemplate', { ...base, bits: 'many' }), 'registerTemplate', 431, /bits/);
    refused(
      await alice.client.call('registerTemplate', { ...base, zoneid: -1 }),
      'registerTemplate',
      431,
      "Template registered for 'All zones' can only be owned a Root Admin account. Please select specific zone(s).",
    );
    refused(
      await alice.client.call('registerTemplate', { ...base, zoneid: disabledZone.id }),
      'registerTemplate',
      531,
      `Cannot perform this operation, Zone is currently disabled: ${disabledZone.id}`,
      4365,
    );
    refused(
      await alice.client.call('registerTemplate', { ...base, account: 'tbob', domainid: root.id }),
      'registerTemplate',
      531,
      /does not have permission/,
    );
    refused(await alice.client.call('registerTemplate', { ...base, isrouting: true }), 'registerTemplate', 531, /isrouting can only be specified by a Root Admin/);
    expect(await snapshot()).toBe(before);
  });

  it('lets the root admin register in a disabled zone and on behalf of an account', async () => {
    const inDisabled = await register(admin, { zoneid: disabledZone.id });
    expect(inDisabled.zonename).toBe('zone-off');
    const forBob = await register(admin, { account: 'tbob', domainid: root.id });
    expect(forBob.account).toBe('tbob');
    expect(ids((await listTemplates(bob.client, { templatefilter: 'self' })).items)).toContain(forBob.id);
  });
});

describe('listTemplates', () => {
  let featured: any;
  let community: any;
  let adminPrivate: any;
  let alicePrivate: any;
  let alicePublic: any;
  let subPrivate: any;

  beforeAll(async () => {
    featured = await register(admin, { name: 'lt-featured', ispublic: true, isfeatured: true, zoneids: `${zone1.id},${zone2.id}`, zoneid: '' });
    community = await register(admin, { name: 'lt-community', ispublic: true });
    adminPrivate = await register(admin, { name: 'lt-admin-private' });
    alicePrivate = await register(alice.client, { name: 'lt-alice-private' });
    alicePublic = await register(alice.client, { name: 'lt-alice-public', ispublic: true });
    subPrivate = await register(subAdmin.client, { name: 'lt-sub-private' });
  });

  it('refuses an unknown filter, and filter all to users', async () => {
    refused(await bob.client.call('listTemplates', {}), 'listTemplates', 431, 'Unable to execute API command listtemplates due to missing parameter templatefilter');
    refused(
      await bob.client.call('listTemplates', { templatefilter: 'everything' }),
      'listTemplates',
      431,
      'No enum constant com.cloud.template.VirtualMachineTemplate.TemplateFilter.everything',
    );
    refused(await bob.client.call('listTemplates', { templatefilter: 'all' }), 'listTemplates', 431, 'Filter all can be specified by admin only', 4350);
  });

  it('shows featured and community templates only once they are downloaded', async () => {
    expect(ids((await listTemplates(bob.client, { templatefilter: 'featured' })).items)).not.toContain(featured.id);
    await markTemplateDownloaded(featured.id, zone1.id, { size: 2147483648, physicalsize: 734003200 });
    await markTemplateDownloaded(community.id, zone1.id);
    await markTemplateDownloaded(alicePublic.id, zone1.id);
    const seen = await listTemplates(bob.client, { templatefilter: 'featured' });
    // Only the zone where it is ready: featured is ready-only, as upstream.
    expect(seen.items.filter((t) => t.id === featured.id)).toHaveLength(1);
    const row = seen.items.find((t) => t.id === featured.id);
    expect(row).toMatchObject({ isready: true, zoneid: zone1.id, size: 2147483648, physicalsize: 734003200, isfeatured: true });
    // Not the owner, not a root admin: no status and no url (upstream's restricted view).
    expect(row).not.toHaveProperty('status');
    expect(row).not.toHaveProperty('url');
    expect(seen.items.every((t) => t.isfeatured && t.ispublic)).toBe(true);
    const communityIds = ids((await listTemplates(bob.client, { templatefilter: 'community' })).items);
    expect(communityIds).toEqual(expect.arrayContaining([community.id, alicePublic.id]));
    expect(communityIds).not.toContain(featured.id);
    expect(communityIds).not.toContain(adminPrivate.id);
  });

  it('shows a user its own (self, selfexecutable) and public ones (executable), never others’ private ones', async () => {
    const self = ids((await listTemplates(alice.client, { templatefilter: 'self' })).items);
    expect(self).toEqual(expect.arrayContaining([alicePrivate.id, alicePublic.id]));
    expect(self).not.toContain(community.id);
    const selfExecutable = ids((await listTemplates(alice.client, { templatefilter: 'selfexecutable' })).items);
    expect(selfExecutable).toContain(alicePublic.id);
    expect(selfExecutable).not.toContain(alicePrivate.id);
    const executable = ids((await listTemplates(bob.client, { templatefilter: 'executable' })).items);
    expect(executable).toEqual(expect.arrayContaining([featured.id, community.id, alicePublic.id]));
    for (const hidden of [alicePrivate.id, adminPrivate.id, subPrivate.id]) expect(executable).not.toContain(hidden);
    expect((await listTemplates(bob.client, { templatefilter: 'sharedexecutable' })).items.map((t) => t.id)).not.toContain(alicePrivate.id);
  });

  it('lets the owner see status and url of its own template', async () => {
    const [row] = (await listTemplates(alice.client, { templatefilter: 'self', id: alicePrivate.id })).items;
    expect(row).toMatchObject({ status: 'Download pending', url: expect.stringContaining('http'), isready: false });
  });

  it('lists everything for the root admin with filter all; a domain admin sees public ones and its subtree', async () => {
    const all = ids((await listTemplates(admin, { templatefilter: 'all' })).items);
    expect(all).toEqual(expect.arrayContaining([featured.id, community.id, adminPrivate.id, alicePrivate.id, alicePublic.id, subPrivate.id]));
    const sub = ids((await listTemplates(subAdmin.client, { templatefilter: 'all' })).items);
    expect(sub).toEqual(expect.arrayContaining([featured.id, community.id, alicePublic.id, subPrivate.id]));
    expect(sub).not.toContain(alicePrivate.id);
    expect(sub).not.toContain(adminPrivate.id);
  });

  it('filters by id, ids, name, keyword, zone and hypervisor, and pages rows with a total count', async () => {
    expect(ids((await listTemplates(bob.client, { templatefilter: 'executable', id: community.id })).items)).toEqual([community.id]);
    expect(ids((await listTemplates(bob.client, { templatefilter: 'executable', name: 'LT-COMMUNITY' })).items)).toEqual([community.id]);
    expect(ids((await listTemplates(bob.client, { templatefilter: 'executable', keyword: 'lt-' })).items).sort()).toEqual(
      [featured.id, featured.id, community.id, alicePublic.id].sort(),
    );
    const both = await listTemplates(admin, { templatefilter: 'all', ids: `${featured.id},${community.id}` });
    expect(both.count).toBe(3); // featured is in two zones
    const inZone2 = await listTemplates(admin, { templatefilter: 'all', zoneid: zone2.id, keyword: 'lt-' });
    expect(ids(inZone2.items)).toEqual([featured.id]);
    const unique = await listTemplates(admin, { templatefilter: 'all', ids: `${featured.id},${community.id}`, showunique: true });
    expect(unique.count).toBe(2);
    expect((await listTemplates(admin, { templatefilter: 'all', hypervisor: 'VMware' })).count).toBe(0);
    const total = await listTemplates(admin, { templatefilter: 'all' });
    const page2 = await listTemplates(admin, { templatefilter: 'all', page: 2, pagesize: 2 });
    expect(page2.count).toBe(total.count);
    expect(page2.items.map((t) => `${t.id}/${t.zoneid}`)).toEqual(total.items.slice(2, 4).map((t) => `${t.id}/${t.zoneid}`));
    const ghost = crypto.randomUUID();
    refused(await admin.call('listTemplates', { templatefilter: 'all', zoneid: ghost }), 'listTemplates', 431, noEntity('listtemplates', 'zoneid', ghost));
    refused(await admin.call('listTemplates', { templatefilter: 'all', id: ghost }), 'listTemplates', 431, noEntity('listtemplates', 'id', ghost));
    refused(await bob.client.call('listTemplates', { templatefilter: 'self', id: alicePrivate.id }), 'listTemplates', 531, /does not have permission/);
  });

  it('reports download progress and failures as upstream’s status', async () => {
    await markTemplateDownloading(adminPrivate.id, zone1.id, 42);
    let [row] = (await listTemplates(admin, { templatefilter: 'self', id: adminPrivate.id })).items;
    expect(row).toMatchObject({ status: '42% Downloaded', isready: false });
    await markTemplateFailed(adminPrivate.id, zone1.id, 'Failed to download: HTTP 404 ');
    [row] = (await listTemplates(admin, { templatefilter: 'self', id: adminPrivate.id })).items;
    expect(row).toMatchObject({ status: 'Failed to download: HTTP 404', isready: false });
    await markTemplateDownloaded(adminPrivate.id, zone1.id);
    [row] = (await listTemplates(admin, { templatefilter: 'self', id: adminPrivate.id })).items;
    expect(row).toMatchObject({ status: 'Download Complete', isready: true });
  });
});

describe('updateTemplate and updateTemplatePermissions', () => {
  let mine: any;

  beforeAll(async () => {
    mine = await register(alice.client, { name: 'up-alice' });
    await markTemplateDownloaded(mine.id, zone1.id);
  });

  it('lets the owner update attributes and records TEMPLATE.UPDATE', async () => {
    const answer = await alice.client.call('updateTemplate', {
      id: mine.id,
      name: 'up-alice-renamed',
      displaytext: 'renamed',
      ostypeid: debian.id,
      passwordenabled: true,
      sshkeyenabled: true,
      'details[0].rootdiskcontroller': 'virtio',
    });
    const template = ok(answer, 'updateTemplate').template;
    expect(template).toMatchObject({
      id: mine.id,
      name: 'up-alice-renamed',
      displaytext: 'renamed',
      ostypeid: debian.id,
      ostypename: 'Debian GNU/Linux 12 (64-bit)',
      passwordenabled: true,
      sshkeyenabled: true,
      details: { rootdiskcontroller: 'virtio' },
      isready: true,
    });
    const [listed] = (await listTemplates(alice.client, { templatefilter: 'self', id: mine.id })).items;
    expect(listed).toMatchObject({ name: 'up-alice-renamed', ostypeid: debian.id });
    const events = ok(await alice.client.call('listEvents', { type: 'TEMPLATE.UPDATE' }), 'listEvents');
    expect(events.event.some((e: any) => e.resourceid === mine.id)).toBe(true);
  });

  it('refuses updates by others and with bad values, changing nothing', async () => {
    const before = await snapshot();
    refused(await bob.client.call('updateTemplate', { id: mine.id, name: 'stolen' }), 'updateTemplate', 531, /does not have permission/, 4365);
    const ghost = crypto.randomUUID();
    refused(await alice.client.call('updateTemplate', { id: ghost, name: 'x' }), 'updateTemplate', 431, noEntity('updatetemplate', 'id', ghost));
    refused(await alice.client.call('updateTemplate', { id: mine.id, ostypeid: ghost }), 'updateTemplate', 431, noEntity('updatetemplate', 'ostypeid', ghost));
    refused(await alice.client.call('updateTemplate', { id: mine.id, format: 'OVA' }), 'updateTemplate', 431, /Image format: OVA is incorrect/);
    refused(await alice.client.call('updateTemplate', { id: mine.id, isrouting: true }), 'updateTemplate', 531, /Root Admin/);
    refused(await alice.client.call('updateTemplate', {}), 'updateTemplate', 431, 'Unable to execute API command updatetemplate due to missing parameter id');
    expect(await snapshot()).toBe(before);
  });

  it('shares a template with another account (sharedexecutable) and takes it back', async () => {
    expect(ids((await listTemplates(bob.client, { templatefilter: 'sharedexecutable' })).items)).not.toContain(mine.id);
    const answer = await alice.client.call('updateTemplatePermissions', { id: mine.id, accounts: 'tbob', op: 'add' });
    expect(ok(answer, 'updateTemplatePermissions')).toEqual({ success: true });
    expect(ids((await listTemplates(bob.client, { templatefilter: 'sharedexecutable' })).items)).toEqual([mine.id]);
    // Shared is not executable (upstream), but bob may now look at it by id.
    expect(ids((await listTemplates(bob.client, { templatefilter: 'executable' })).items)).not.toContain(mine.id);
    expect(ids((await listTemplates(bob.client, { templatefilter: 'sharedexecutable', id: mine.id })).items)).toEqual([mine.id]);
    ok(await alice.client.call('updateTemplatePermissions', { id: mine.id, accounts: 'tbob', op: 'remove' }), 'updateTemplatePermissions');
    expect(ids((await listTemplates(bob.client, { templatefilter: 'sharedexecutable' })).items)).not.toContain(mine.id);
  });

  it('makes a template public, then resets it private and unshared', async () => {
    ok(await alice.client.call('updateTemplatePermissions', { id: mine.id, ispublic: true, accounts: 'tbob', op: 'add' }), 'updateTemplatePermissions');
    expect(ids((await listTemplates(bob.client, { templatefilter: 'community' })).items)).toContain(mine.id);
    ok(await alice.client.call('updateTemplatePermissions', { id: mine.id, op: 'reset' }), 'updateTemplatePermissions');
    expect(ids((await listTemplates(bob.client, { templatefilter: 'community' })).items)).not.toContain(mine.id);
    expect(ids((await listTemplates(bob.client, { templatefilter: 'sharedexecutable' })).items)).not.toContain(mine.id);
    // The root admin may feature it.
    ok(await admin.call('updateTemplatePermissions', { id: mine.id, ispublic: true, isfeatured: true }), 'updateTemplatePermissions');
    expect(ids((await listTemplates(bob.client, { templatefilter: 'featured' })).items)).toContain(mine.id);
    ok(await admin.call('updateTemplatePermissions', { id: mine.id, op: 'reset' }), 'updateTemplatePermissions');
  });

  it('refuses permission changes by others, featuring by users, bad operations and unknown accounts, changing nothing', async () => {
    const before = await snapshot();
    refused(await bob.client.call('updateTemplatePermissions', { id: mine.id, ispublic: true }), 'updateTemplatePermissions', 531, /does not have permission/);
    refused(
      await alice.client.call('updateTemplatePermissions', { id: mine.id, isfeatured: true }),
      'updateTemplatePermissions',
      531,
      'Only ROOT admins are allowed to modify isfeatured attribute.',
    );
    refused(
      await alice.client.call('updateTemplatePermissions', { id: mine.id, accounts: 'tbob', op: 'share' }),
      'updateTemplatePermissions',
      431,
      "Invalid operation on Accounts, the operation must be either 'add' or 'remove' in order to modify launch permissions.  Given operation is: 'share'",
    );
    refused(
      await alice.client.call('updateTemplatePermissions', { id: mine.id, op: 'add' }),
      'updateTemplatePermissions',
      431,
      'Operation add requires Accounts or projectIds to be passed in',
    );
    refused(
      await alice.client.call('updateTemplatePermissions', { id: mine.id, accounts: 'tbob,nobody', op: 'add' }),
      'updateTemplatePermissions',
      431,
      `Unable to grant a launch permission to Account nobody in domain id=${root.id}, Account not found.  No permissions updated, please verify the Account names and retry.`,
    );
    expect(await snapshot()).toBe(before);
    expect(ids((await listTemplates(bob.client, { templatefilter: 'sharedexecutable' })).items)).not.toContain(mine.id);
  });
});

describe('deleteTemplate', () => {
  it('deletes a template through a job and records TEMPLATE.DELETE', async () => {
    const doomed = await register(alice.client, { name: 'del-alice' });
    const before = await snapshot();
    refused(await bob.client.call('deleteTemplate', { id: doomed.id }), 'deleteTemplate', 531, /does not have permission/);
    const ghost = crypto.randomUUID();
    refused(await alice.client.call('deleteTemplate', { id: ghost }), 'deleteTemplate', 431, noEntity('deletetemplate', 'id', ghost));
    refused(await alice.client.call('deleteTemplate', { id: doomed.id, zoneid: zone2.id }), 'deleteTemplate', 431, /not available in zone/);
    expect(await snapshot()).toBe(before);
    const answer = ok(await alice.client.call('deleteTemplate', { id: doomed.id }), 'deleteTemplate');
    expect(answer).toEqual({ jobid: expect.stringMatching(UUID) });
    const job = await alice.client.waitForJob(answer.jobid);
    expect(job).toMatchObject({ jobstatus: 1, jobresult: { success: true }, jobinstancetype: 'Template', jobinstanceid: doomed.id });
    expect(ids((await listTemplates(alice.client, { templatefilter: 'self' })).items)).not.toContain(doomed.id);
    const events = ok(await alice.client.call('listEvents', { type: 'TEMPLATE.DELETE' }), 'listEvents');
    expect(events.event.some((e: any) => e.resourceid === doomed.id)).toBe(true);
  });

  it('deletes the copy in one zone only when zoneid is given', async () => {
    const multi = ok(
      await admin.call('registerTemplate', {
        name: unique('del-multi'),
        url: 'http://x.example/a.qcow2',
        format: 'QCOW2',
        hypervisor: 'KVM',
        zoneids: `${zone1.id},${zone2.id}`,
        ostypeid: ubuntu.id,
      }),
      'registerTemplate',
    ).template[0];
    const job = await admin.waitForJob(ok(await admin.call('deleteTemplate', { id: multi.id, zoneid: zone2.id }), 'deleteTemplate').jobid);
    expect(job.jobstatus).toBe(1);
    const rows = (await listTemplates(admin, { templatefilter: 'all', id: multi.id })).items;
    expect(rows.map((row) => row.zoneid)).toEqual([zone1.id]);
  });

  it('refuses deleteTemplate on an ISO', async () => {
    const iso = ok(
      await admin.call('registerIso', { name: unique('iso'), url: 'http://x.example/a.iso', zoneid: zone1.id, ostypeid: ubuntu.id }),
      'registerIso',
    ).iso[0];
    refused(await admin.call('deleteTemplate', { id: iso.id }), 'deleteTemplate', 431, 'Please specify a valid template.');
  });
});

describe('ISOs', () => {
  it('registers an ISO with upstream fields and records ISO.CREATE', async () => {
    const name = unique('iso');
    const answer = await alice.client.call('registerIso', {
      name,
      displaytext: 'installer',
      url: 'http://images.example.com/debian-12.iso',
      zoneid: zone1.id,
      ostypeid: debian.id,
      ispublic: true,
      isfeatured: true,
    });
    const body = ok(answer, 'registerIso');
    expect(body.count).toBe(1);
    const iso = body.iso[0];
    expect(iso).toMatchObject({
      id: expect.stringMatching(UUID),
      name,
      displaytext: 'installer',
      ispublic: true,
      isfeatured: false,
      bootable: true,
      format: 'ISO',
      ostypeid: debian.id,
      ostypename: 'Debian GNU/Linux 12 (64-bit)',
      account: 'talice',
      zoneid: zone1.id,
      isready: false,
      status: 'Download pending',
    });
    expect(iso).not.toHaveProperty('templatetype');
    const events = ok(await alice.client.call('listEvents', { type: 'ISO.CREATE' }), 'listEvents');
    expect(events.event.some((e: any) => e.resourceid === iso.id)).toBe(true);

    // isofilter defaults to selfexecutable, which lists ready ISOs only.
    const listIsos = async (client: ApiClient, params: Record<string, string | boolean> = {}) =>
      ids(ok(await client.call('listIsos', params), 'listIsos').iso ?? []);
    expect(await listIsos(alice.client)).not.toContain(iso.id);
    expect(await listIsos(alice.client, { isofilter: 'self' })).toContain(iso.id);
    await markTemplateDownloaded(iso.id, zone1.id);
    expect(await listIsos(alice.client)).toContain(iso.id);
    const [ready] = ok(await alice.client.call('listIsos', { id: iso.id }), 'listIsos').iso;
    expect(ready).toMatchObject({ isready: true, status: 'Successfully Installed' });
    expect(await listIsos(bob.client, { isofilter: 'community' })).toContain(iso.id);
    expect(await listIsos(bob.client, { isofilter: 'executable', bootable: true })).toContain(iso.id);
    expect(await listIsos(bob.client, { isofilter: 'executable', bootable: false })).not.toContain(iso.id);
    // Templates and ISOs are listed apart.
    expect(ids((await listTemplates(admin, { templatefilter: 'all' })).items)).not.toContain(iso.id);
  });

  it('registers a non-bootable ISO with the None OS type', async () => {
    const iso = ok(
      await admin.call('registerIso', { name: unique('data-iso'), url: 'http://x.example/data.iso', zoneid: zone1.id, bootable: false }),
      'registerIso',
    ).iso[0];
    expect(iso).toMatchObject({ bootable: false, ostypename: 'None' });
  });

  it('refuses bad ISO registrations and listings, changing nothing', async () => {
    const before = await snapshot();
    refused(await alice.client.call('registerIso', { name: 'x', url: 'http://x.example/a.iso', zoneid: zone1.id }), 'registerIso', 431, 'Please pass a valid GuestOS Id');
    refused(
      await alice.client.call('registerIso', { name: 'x', url: 'http://x.example/a.iso', ostypeid: ubuntu.id }),
      'registerIso',
      431,
      'Unable to execute API command registeriso due to missing parameter zoneid',
    );
    refused(
      await alice.client.call('registerIso', { name: 'x', url: 'http://x.example/a.iso', zoneid: -1, ostypeid: ubuntu.id }),
      'registerIso',
      431,
      /can only be owned a Root Admin account/,
    );
    refused(
      await alice.client.call('registerIso', { name: 'x', url: 'http://x.example/a.iso', zoneid: zone1.id, ostypeid: ubuntu.id, checksum: 'short' }),
      'registerIso',
      431,
      'Checksum digest length should be 32 instead of 5',
    );
    refused(await bob.client.call('listIsos', { isofilter: 'all' }), 'listIsos', 431, 'Filter all can be specified by admin only');
    const template = await register(admin, {});
    refused(await admin.call('listIsos', { id: template.id }), 'listIsos', 431, noEntity('listisos', 'id', template.id));
    const after = JSON.parse(await snapshot());
    const beforeParsed = JSON.parse(before);
    expect(after.isos).toEqual(beforeParsed.isos);
  });
});

describe('the images by OS category (the UI\'s Add Instance wizard)', () => {
  it('lists templates and ISOs of one OS category, and the categories a zone has images of', async () => {
    const netware = OS_TYPES.find((type) => type.description === 'Novell Netware 6.x')!;
    const freebsd = OS_TYPES.find((type) => type.oscategoryid === '1f030a1c-c93e-4294-8b32-764e3cfc03af')!;
    const template = await register(admin, { zoneid: zone2.id, ostypeid: netware.id });
    const iso = ok(await admin.call('registerIso', { name: unique('iso'), displaytext: 'bsd', url: 'http://images.example.com/bsd.iso', zoneid: zone2.id, ostypeid: freebsd.id }), 'registerIso').iso[0];

    const inCategory = await listTemplates(admin, { templatefilter: 'all', oscategoryid: netware.oscategoryid });
    expect(ids(inCategory.items)).toEqual([template.id]);
    expect(ids((await listTemplates(admin, { templatefilter: 'all', oscategoryid: freebsd.oscategoryid })).items)).toEqual([]);
    expect((ok(await admin.call('listIsos', { isofilter: 'all', oscategoryid: freebsd.oscategoryid }), 'listIsos').iso ?? []).map((i: any) => i.id)).toEqual([iso.id]);

    const categories = async (params: Record<string, string | boolean>) => (ok(await admin.call('listOsCategories', params), 'listOsCategories').oscategory ?? []).map((c: any) => c.id);
    expect(await categories({ zoneid: zone2.id })).toContain(netware.oscategoryid);
    expect(await categories({ zoneid: zone2.id })).not.toContain(freebsd.oscategoryid);
    expect(await categories({ zoneid: zone1.id })).not.toContain(netware.oscategoryid);
    expect(await categories({ zoneid: zone2.id, isiso: true })).toEqual(expect.arrayContaining([freebsd.oscategoryid]));
    expect(await categories({ zoneid: zone2.id, isiso: true })).not.toContain(netware.oscategoryid);
    // Mold has no VNF templates.
    expect(await categories({ zoneid: zone2.id, isvnf: true })).toEqual([]);

    const ghost = crypto.randomUUID();
    refused(await admin.call('listTemplates', { templatefilter: 'all', oscategoryid: ghost }), 'listTemplates', 431, noEntity('listtemplates', 'oscategoryid', ghost));
    refused(await admin.call('listOsCategories', { zoneid: ghost }), 'listOsCategories', 431, noEntity('listoscategories', 'zoneid', ghost));
  });
});

describe('listApis', () => {
  it('offers the template, ISO and OS catalogue commands to users', async () => {
    const apis = ok(await bob.client.call('listApis'), 'listApis').api.map((api: any) => api.name);
    for (const name of ['registerTemplate', 'listTemplates', 'updateTemplate', 'updateTemplatePermissions', 'deleteTemplate', 'registerIso', 'listIsos', 'listOsTypes', 'listOsCategories']) {
      expect(apis).toContain(name);
    }
    const [del] = ok(await bob.client.call('listApis', { name: 'deleteTemplate' }), 'listApis').api;
    expect(del.isasync).toBe(true);
  });
});
