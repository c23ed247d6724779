// Backup and restore of the inventory (`npm run export` / `npm run import`, scripts/inventory.ts) on the
// real runtime: an export of a populated control plane, imported into an empty table beside the data
// key, CA and credentials files of the first, serves every listing exactly as before, and the imported
// API keys still sign requests (their sealed secrets open). A file cut short, altered or of another
// version, and an import into a table that is not empty, are refused with a clear message, exit 1,
// and change nothing.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../support/client.ts';
import { seedMember, type Member } from '../support/members.ts';
import { inventoryScript, restoreInto } from '../support/inventory.ts';
import { tempDataDir, useRuntimeEndpoints, type RunningRuntime } from '../support/runtime.ts';
import { seedVm } from '../support/vm-seed.ts';
import { getDomain } from '../../shared/db/identity.ts';
import { ok, startWorld, unique, type World } from './identity-fixtures.ts';

let world: World;
let restored: RunningRuntime | undefined;
let member: Member;
const dir = tempDataDir();
const exported = join(dir, 'inventory.jsonl');

const inventory = (mode: 'export' | 'import', file: string, table: string) => inventoryScript(mode, file, { dynamodb: world.runtime.endpoints.dynamodb, table });

/** What a site looks at: the listings, as the root admin sees them. */
async function listings(client: ApiClient) {
  const answers: Record<string, unknown> = {};
  for (const [command, params] of [
    ['listDomains', { listall: true }],
    ['listAccounts', { listall: true }],
    ['listUsers', { listall: true }],
    ['listZones', {}],
    ['listServiceOfferings', {}],
    ['listVirtualMachines', { listall: true }],
    ['listSSHKeyPairs', { listall: true }],
    ['listConfigurations', { name: 'vm.stats.interval' }],
  ] as const) {
    answers[command] = ok(await client.call(command, params), command);
  }
  return answers;
}

beforeAll(async () => {
  world = await startWorld();
  useRuntimeEndpoints(world.runtime);
  const admin = world.admin;
  const root = (await getDomain(world.rootDomainId))!;
  member = await seedMember(world.runtime.apiUrl, unique('owner'), root, 'User');
  ok(await member.client.call('createSSHKeyPair', { name: unique('key') }), 'createSSHKeyPair');
  const zone = ok(await admin.call('createZone', { name: unique('az'), networktype: 'Advanced', dns1: '192.0.2.53' }), 'createZone').zone;
  const offering = ok(await admin.call('createServiceOffering', { name: unique('so'), displaytext: 'Small', cpunumber: 1, cpuspeed: 1000, memory: 512 }), 'createServiceOffering').serviceoffering;
  for (const state of ['Running', 'Stopped'] as const) {
    await seedVm({ ...member.account, userId: member.user.id }, { zoneId: zone.id, serviceOfferingId: offering.id, templateId: world.rootDomainId, state });
  }
  ok(await admin.call('updateConfiguration', { name: 'vm.stats.interval', value: '30000' }), 'updateConfiguration');
});
afterAll(async () => {
  await restored?.stop();
  await world?.runtime.stop();
  for (const made of [dir, restored?.dataDir]) if (made) rmSync(made, { recursive: true, force: true });
});

describe('export and import of the inventory', () => {
  let before: Record<string, unknown>;
  // The refusals are tried on a table of their own: each must leave it untouched (absent).
  const targetTable = unique('mold-refusals');

  it('exports every item to one file, and never overwrites one', async () => {
    before = await listings(world.admin);
    const run = await inventory('export', exported, world.runtime.table);
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(/^exported \d+ items from table .* to .*inventory\.jsonl\n$/);
    const lines = readFileSync(exported, 'utf8').trim().split('\n');
    expect(JSON.parse(lines[0]!)).toMatchObject({ format: 'mold-inventory', version: 1, table: world.runtime.table });
    expect(JSON.parse(lines.at(-1)!).end.items).toBe(lines.length - 2);
    // Nothing sealed is in clear: neither an API secret key nor a password is in the file.
    const text = readFileSync(exported, 'utf8');
    expect(text).not.toContain(world.runtime.credentials.secretkey);
    expect(text).not.toContain(world.runtime.credentials.password);
    expect(text).not.toContain(member.password);
    const again = await inventory('export', exported, world.runtime.table);
    expect(again).toMatchObject({ code: 1, stderr: expect.stringMatching(/inventory\.jsonl exists: an export never overwrites a file/) });
  });

  it('refuses a file cut short, altered or of another version, writing nothing', async () => {
    const lines = readFileSync(exported, 'utf8').trim().split('\n');
    const variant = (name: string, content: string[]) => {
      const file = join(dir, name);
      writeFileSync(file, `${content.join('\n')}\n`);
      return file;
    };
    const cut = await inventory('import', variant('cut.jsonl', lines.slice(0, -3)), targetTable);
    expect(cut).toMatchObject({ code: 1, stderr: expect.stringMatching(/^mold: the export is incomplete: .*cut short/) });
    const altered = lines.map((line, index) => (index === 1 ? line.replace(/"S":"/, '"S":"x') : line));
    expect(await inventory('import', variant('altered.jsonl', altered), targetTable)).toMatchObject({ code: 1, stderr: expect.stringMatching(/^mold: the export is corrupt: .*checksum/) });
    const newer = [JSON.stringify({ ...JSON.parse(lines[0]!), version: 2 }), ...lines.slice(1)];
    expect(await inventory('import', variant('newer.jsonl', newer), targetTable)).toMatchObject({ code: 1, stderr: 'mold: this export is format version 2; this Mold imports version 1 only\n' });
    expect(await inventory('import', variant('other.jsonl', ['{"hello":"world"}']), targetTable)).toMatchObject({ code: 1, stderr: expect.stringMatching(/not a Mold inventory export/) });
    // Each refusal came before the table was touched: the import that follows finds it empty.
    expect(await inventory('import', exported, targetTable)).toMatchObject({ code: 0 });
  });

  it('imports into an empty table: a runtime on it, with the same data key and CA, serves every listing as before', async () => {
    let run;
    ({ run, runtime: restored } = await restoreInto(world.runtime, exported));
    expect(run.stderr).toBe('');
    expect(run.stdout).toMatch(new RegExp(`^imported \\d+ items \\(exported .* from table ${world.runtime.table}\\) into table ${restored.table}`));
    // The root admin's API key, sealed in the import, signs requests to the new control plane.
    const admin = new ApiClient(restored.apiUrl, world.runtime.credentials);
    expect(await listings(admin)).toEqual(before);
  });

  it('refuses an import into a table that is not empty', async () => {
    const run = await inventory('import', exported, restored!.table);
    expect(run).toMatchObject({ code: 1, stderr: expect.stringMatching(/is not empty: an import goes only into an empty control plane/) });
  });
});
