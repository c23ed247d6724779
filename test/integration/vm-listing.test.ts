// shared/db/vm-listing.ts against DynamoDB Local: one page of VMs reads no more items than the rows
// up to the page's end, whatever the table holds, and answers what a read of every VM answers (the
// same rows in the same order, the same count). The items are counted as DynamoDB Local returns them:
// the test wraps the document client's send and tallies each answer's Items and Responses.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dynamo } from '../../shared/aws.ts';
import { createAccount, createDomain, getDomain, type Account, type Domain } from '../../shared/db/identity.ts';
import { listRoles } from '../../shared/db/roles.ts';
import { listVmPage, type VmListQuery } from '../../shared/db/vm-listing.ts';
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { tableName } from '../../shared/db/items.ts';
import { deleteVmRecords, importVmRecords, indexVmsInCreationOrder, listVmRecords, transitionVm, VM_STATES, vmKey, type VirtualMachine, type VmState } from '../../shared/db/vms.ts';
import { startRuntime, useRuntimeEndpoints, type RunningRuntime } from '../support/runtime.ts';
import { makeVm } from '../support/vm-seed.ts';

let runtime: RunningRuntime;
let root: Domain;
let sub: Domain;
let big: Account & { userId: string };
let small: Account & { userId: string };
const zones = [randomUUID(), randomUUID()];
const STATES: VmState[] = ['Running', 'Running', 'Stopped', 'Destroyed', 'Expunging', 'Error'];

/** Items DynamoDB returned while `read` ran: index entries (Query) and records (BatchGetItem). */
async function counted<T>(read: () => Promise<T>): Promise<{ result: T; entries: number; records: number }> {
  const client = dynamo();
  const send = client.send.bind(client);
  let entries = 0;
  let records = 0;
  client.send = (async (command: any, ...rest: any[]) => {
    const answer: any = await (send as any)(command, ...rest);
    entries += answer.Items?.length ?? 0;
    for (const items of Object.values(answer.Responses ?? {})) records += (items as unknown[]).length;
    return answer;
  }) as typeof client.send;
  try {
    return { result: await read(), entries, records };
  } finally {
    client.send = send;
  }
}

async function seedVms(owner: Account & { userId: string }, how: number) {
  const records = [];
  for (let i = 0; i < how; i++) {
    records.push(await makeVm(owner, { zoneId: zones[i % 2]!, serviceOfferingId: randomUUID(), templateId: randomUUID(), state: STATES[i % STATES.length]! }));
  }
  await importVmRecords(records);
}

/** The reference: every VM read, then filtered, in number order (what the cache served). */
async function everyMatch(query: VmListQuery): Promise<VirtualMachine[]> {
  const all = await listVmRecords({});
  const { scope } = query;
  return all.filter(
    (vm) =>
      (scope.accountId ? vm.accountId === scope.accountId : scope.recursive ? vm.domainTree.startsWith(scope.tree) : vm.domainTree === scope.tree) &&
      (!query.states || query.states.includes(vm.state)) &&
      (!query.equals?.zoneId || vm.zoneId === query.equals.zoneId) &&
      (!query.predicate || query.predicate(vm)),
  );
}

const ids = (vms: readonly VirtualMachine[]) => vms.map((vm) => vm.id);

beforeAll(async () => {
  runtime = await startRuntime();
  useRuntimeEndpoints(runtime);
  root = (await getDomain(runtime.credentials.domainid))!;
  sub = await createDomain({ name: `listing-${randomUUID().slice(0, 8)}`, parent: root });
  const role = (await listRoles()).find((r) => r.name === 'User')!;
  const account = async (name: string) => {
    const { account, user } = await createAccount(
      { name, domain: sub, roleId: role.id, roleType: 'User' },
      { username: name, password: `pw-${name}`, firstname: 'List', lastname: 'Ing', email: `${name}@example.com` },
    );
    return { ...account, userId: user.id };
  };
  [big, small] = await Promise.all([account(`big-${randomUUID().slice(0, 6)}`), account(`small-${randomUUID().slice(0, 6)}`)]);
  // Interleaved, so neither account's VMs are contiguous in creation order.
  for (let round = 0; round < 5; round++) {
    await seedVms(big, 60);
    await seedVms(small, 12);
  }
}, 240_000);

afterAll(async () => {
  await runtime?.stop();
});

describe('one page of VMs', () => {
  const visible = ['Starting', 'Running', 'Stopping', 'Stopped', 'Migrating', 'Error'] as VmState[];
  const cases: [string, (page: number, size: number) => VmListQuery][] = [
    ['everything (root admin, listall)', (page, size) => ({ scope: { tree: root.tree, recursive: true }, window: { start: (page - 1) * size, size } })],
    ['a domain subtree', (page, size) => ({ scope: { tree: sub.tree, recursive: true }, window: { start: (page - 1) * size, size } })],
    ['one account, as its user (no Destroyed or Expunging)', (page, size) => ({ scope: { tree: sub.tree, recursive: false, accountId: big.id }, states: visible, window: { start: (page - 1) * size, size } })],
    ['everything in one zone, Running', (page, size) => ({ scope: { tree: root.tree, recursive: true }, equals: { zoneId: zones[1] }, states: ['Running'], window: { start: (page - 1) * size, size } })],
    ['one account in one zone', (page, size) => ({ scope: { tree: sub.tree, recursive: false, accountId: small.id }, equals: { zoneId: zones[0] }, window: { start: (page - 1) * size, size } })],
  ];

  for (const [what, query] of cases) {
    it(`${what}: the first page reads at most the page size of entries and of records, and answers as a read of every VM`, async () => {
      const size = 20;
      const { result, entries, records } = await counted(() => listVmPage(query(1, size)));
      const reference = await everyMatch(query(1, size));
      expect(reference.length).toBeGreaterThan(size);
      expect(ids(result.rows)).toEqual(ids(reference.slice(0, size)));
      expect(result.count).toBe(reference.length);
      expect(entries).toBeLessThanOrEqual(size);
      expect(records).toBeLessThanOrEqual(size);
    });

    it(`${what}: page 3 reads the entries before it and its own records only`, async () => {
      const size = 15;
      const { result, entries, records } = await counted(() => listVmPage(query(3, size)));
      const reference = await everyMatch(query(3, size));
      expect(ids(result.rows)).toEqual(ids(reference.slice(30, 45)));
      expect(result.count).toBe(reference.length);
      expect(entries).toBeLessThanOrEqual(3 * size);
      expect(records).toBeLessThanOrEqual(size);
    });
  }

  it('the items a first page reads do not grow with the table', async () => {
    const query: VmListQuery = { scope: { tree: root.tree, recursive: true }, window: { start: 0, size: 10 } };
    const before = await counted(() => listVmPage(query));
    await seedVms(small, 100);
    const after = await counted(() => listVmPage(query));
    expect(after.result.count).toBe(before.result.count + 100);
    expect(after.entries + after.records).toBe(before.entries + before.records);
    expect(after.entries).toBeLessThanOrEqual(10);
  });

  it('a filter DynamoDB cannot evaluate (a name substring) answers the same as a read of every VM', async () => {
    const predicate = (vm: VirtualMachine) => vm.name.includes('1');
    const query: VmListQuery = { scope: { tree: sub.tree, recursive: true }, predicate, window: { start: 10, size: 10 } };
    const { result } = await counted(() => listVmPage(query));
    const reference = await everyMatch(query);
    expect(ids(result.rows)).toEqual(ids(reference.slice(10, 20)));
    expect(result.count).toBe(reference.length);
  });

  it('a VM written before the creation-order index existed is listed once indexVmsInCreationOrder gave it its entry', async () => {
    const all = await listVmRecords({ accountId: small.id, domainTree: sub.tree });
    const old = all[0]!;
    await dynamo().send(new UpdateCommand({ TableName: tableName(), Key: vmKey(old.id), UpdateExpression: 'REMOVE gsi3pk, gsi3sk' }));
    const query: VmListQuery = { scope: { tree: sub.tree, recursive: true }, window: { start: 0 } };
    expect(ids((await listVmPage(query)).rows)).not.toContain(old.id);
    expect(await indexVmsInCreationOrder()).toBe(1);
    expect(ids((await listVmPage(query)).rows)).toContain(old.id);
    expect(await indexVmsInCreationOrder()).toBe(0);
  });

  it('count follows state changes and expunges (the maintained state counts)', async () => {
    const scopes = [{ tree: sub.tree, recursive: false, accountId: big.id }, { tree: sub.tree, recursive: false }, { tree: root.tree, recursive: true }];
    const countIn = async (scope: VmListQuery['scope'], states: VmState[]) => (await listVmPage({ scope, states, window: { start: 0, size: 1 } })).count;
    const before = await Promise.all(scopes.flatMap((scope) => [countIn(scope, ['Running']), countIn(scope, ['Stopped']), countIn(scope, [...VM_STATES])]));
    const running = (await listVmRecords({ accountId: big.id, domainTree: sub.tree })).filter((vm) => vm.state === 'Running');
    expect(await transitionVm(running[0]!.id, ['Running'], 'Stopped')).toBeDefined();
    expect(await deleteVmRecords(running[1]!.id)).toBe(true);
    const after = await Promise.all(scopes.flatMap((scope) => [countIn(scope, ['Running']), countIn(scope, ['Stopped']), countIn(scope, [...VM_STATES])]));
    expect(after).toEqual(before.map((n, i) => n + [-2, 1, -1][i % 3]!));
    for (const scope of scopes) expect(await countIn(scope, ['Running'])).toBe((await everyMatch({ scope, states: ['Running'], window: { start: 0 } })).length);
  });

  it('ids read only those VMs', async () => {
    const all = await listVmRecords({ accountId: big.id, domainTree: sub.tree });
    const wanted = [all[7]!.id, all[3]!.id, all[50]!.id];
    const { result, entries, records } = await counted(() => listVmPage({ scope: { tree: root.tree, recursive: true }, ids: wanted, window: { start: 0, size: 20 } }));
    expect(ids(result.rows)).toEqual([all[3]!.id, all[7]!.id, all[50]!.id]);
    expect(result.count).toBe(3);
    expect(entries + records).toBe(3);
  });
});
