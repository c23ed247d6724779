// One page of VMs (listVirtualMachines), read from the index that answers the caller's scope, never
// from a copy of every VM. Which index answers what (docs/architecture.md, "Access patterns"):
//
//   ids          the VMs' own keys (BatchGetItem): as many reads as ids
//   host         gsi2 VMHOST#<host id>: the host's VMs
//   one account  gsi1 VMS / <domain tree><account id>#<number>: the account's VMs in creation order;
//                every filter but the substring ones is a DynamoDB filter expression on it
//   a domain, a  gsi3 VMS / <number>: every VM in creation order, projecting domainTree, zoneId and
//   subtree, or  state only; the scope, zone and state are filter expressions on those small entries,
//   everything  and the page's records are then read by key
//
// A page reads the entries before it and its own: page p of size n returns at most p·n entries
// (on gsi3 only keys and three attributes for all but the last n). `count` of a listing filtered by
// scope and state only is the sum of the scope's maintained state counts (vms.ts countVms: one item
// for an account, one small item per account for a domain); with other filters it continues from
// where the page stopped with Select=COUNT: DynamoDB counts the rest of the range server-side and
// returns no items (but reads it: seconds for 10,000 VMs on DynamoDB Local). Filters DynamoDB cannot evaluate (a case-insensitive substring of the name, the keyword, a
// network or a key pair of the VM: the `predicate`) need each candidate record in the process: the
// range is then read page by page (1 MB each) to the end, keeping only the rows of the page asked for.
import { QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { dynamo } from '../aws.ts';
import { getItems, tableName, withoutKeys } from './items.ts';
import { countVms, VM_STATES, vmKey, type VirtualMachine, type VmState } from './vms.ts';

/** Equality filters on a VM's own fields (ids lower-case, as stored). */
export type VmEquals = Partial<Pick<VirtualMachine, 'zoneId' | 'podId' | 'clusterId' | 'templateId' | 'serviceOfferingId' | 'userId' | 'haEnable'>>;

export interface VmListQuery {
  /** A domain subtree (or one domain with recursive false), optionally one account of it. */
  scope: { tree: string; recursive: boolean; accountId?: string };
  /** Only these VMs (ids lower-case). */
  ids?: readonly string[];
  /** Only the VMs on this host. */
  hostId?: string;
  equals?: VmEquals;
  /** The states a VM may be in; omitted: any. */
  states?: readonly VmState[];
  /** A member of this affinity group. */
  affinityGroupId?: string;
  /** What only the process can decide (substring and case-insensitive matches). */
  predicate?: (vm: VirtualMachine) => boolean;
  /** The rows wanted: from `start`, at most `size` (omitted: all). */
  window: { start: number; size?: number };
}

export interface VmPage {
  rows: VirtualMachine[];
  /** Every match, before paging. */
  count: number;
}

const byNumber = (a: VirtualMachine, b: VirtualMachine) => a.number - b.number;

/** The query's conditions on a record, all of them (for reads by key, where DynamoDB filters nothing). */
function recordMatches(query: VmListQuery, vm: VirtualMachine): boolean {
  const { scope } = query;
  if (scope.accountId ? vm.accountId !== scope.accountId : scope.recursive ? !vm.domainTree.startsWith(scope.tree) : vm.domainTree !== scope.tree) return false;
  if (query.hostId && vm.hostId !== query.hostId) return false;
  if (query.states && !query.states.includes(vm.state)) return false;
  for (const [field, value] of Object.entries(query.equals ?? {})) if (value !== undefined && vm[field] !== value) return false;
  if (query.affinityGroupId && !(vm.affinityGroupIds ?? []).includes(query.affinityGroupId)) return false;
  return !query.predicate || query.predicate(vm);
}

const windowOf = <T>(rows: readonly T[], { start, size }: VmListQuery['window']) => rows.slice(start, size === undefined ? undefined : start + size);

/** One page of the VMs the query selects, in creation (number) order, and how many it selects. */
export async function listVmPage(query: VmListQuery): Promise<VmPage> {
  if (query.states?.length === 0) return { rows: [], count: 0 };
  if (query.ids) return byKeys(query, query.ids);
  if (query.hostId) return onHost(query, query.hostId);
  return query.scope.accountId ? overRange(query, accountRange(query)) : overRange(query, installationRange(query));
}

async function byKeys(query: VmListQuery, ids: readonly string[]): Promise<VmPage> {
  const unique = [...new Set(ids)];
  const found: VirtualMachine[] = [];
  for (let i = 0; i < unique.length; i += 100) {
    const items = await getItems<(VirtualMachine | undefined)[]>(unique.slice(i, i + 100).map(vmKey) as never);
    for (const vm of items) if (vm) found.push(vm);
  }
  const matches = found.filter((vm) => recordMatches(query, vm)).sort(byNumber);
  return { rows: windowOf(matches, query.window), count: matches.length };
}

async function onHost(query: VmListQuery, hostId: string): Promise<VmPage> {
  const input: QueryCommandInput = {
    TableName: tableName(),
    IndexName: 'gsi2',
    KeyConditionExpression: 'gsi2pk = :pk',
    ExpressionAttributeValues: { ':pk': `VMHOST#${hostId}` },
  };
  const vms: VirtualMachine[] = [];
  for await (const items of pages(input)) for (const item of items) vms.push(withoutKeys<VirtualMachine>(item));
  const matches = vms.filter((vm) => recordMatches(query, vm)).sort(byNumber);
  return { rows: windowOf(matches, query.window), count: matches.length };
}

/** An index range, its filter expression, and whether its entries are whole records. */
interface Range {
  input: QueryCommandInput;
  /** The entries carry only keys and a few attributes: the page's records are read by key. */
  projected: boolean;
  /** Conditions the filter expression could not hold (on a projected index: every non-projected one). */
  rest?: (vm: VirtualMachine) => boolean;
}

/** Builds a filter expression from conditions on attributes. */
class Conditions {
  readonly parts: string[] = [];
  readonly names: Record<string, string> = {};
  readonly values: Record<string, unknown> = {};
  private n = 0;
  private name(attribute: string) {
    const alias = `#a${this.n}`;
    this.names[alias] = attribute;
    return alias;
  }
  private value(value: unknown) {
    const alias = `:v${this.n++}`;
    this.values[alias] = value;
    return alias;
  }
  equals(attribute: string, value: unknown) {
    this.parts.push(`${this.name(attribute)} = ${this.value(value)}`);
  }
  beginsWith(attribute: string, prefix: string) {
    this.parts.push(`begins_with(${this.name(attribute)}, ${this.value(prefix)})`);
  }
  contains(attribute: string, value: unknown) {
    this.parts.push(`contains(${this.name(attribute)}, ${this.value(value)})`);
  }
  oneOf(attribute: string, values: readonly unknown[]) {
    const name = this.name(attribute);
    this.parts.push(`${name} IN (${values.map((v) => this.value(v)).join(', ')})`);
  }
  /** Adds the filter expression (if any) and the key condition's names and values to a query. */
  into(input: QueryCommandInput & { KeyConditionExpression: string }, keyNames: Record<string, string>, keyValues: Record<string, unknown>): QueryCommandInput {
    return {
      ...input,
      ...(this.parts.length > 0 && { FilterExpression: this.parts.join(' AND ') }),
      ExpressionAttributeNames: { ...keyNames, ...this.names },
      ExpressionAttributeValues: { ...keyValues, ...this.values },
    };
  }
}

const statesFilter = (states: readonly VmState[] | undefined) => (states && states.length < VM_STATES.length ? states : undefined);

/** One account's VMs: gsi1 holds whole records, so every condition but the predicate is DynamoDB's. */
function accountRange(query: VmListQuery): Range {
  const conditions = new Conditions();
  for (const [field, value] of Object.entries(query.equals ?? {})) if (value !== undefined) conditions.equals(field, value);
  const states = statesFilter(query.states);
  if (states) conditions.oneOf('state', states);
  if (query.affinityGroupId) conditions.contains('affinityGroupIds', query.affinityGroupId);
  return {
    projected: false,
    rest: query.predicate,
    input: conditions.into(
      { TableName: tableName(), IndexName: 'gsi1', KeyConditionExpression: '#pk = :pk AND begins_with(#sk, :prefix)' },
      { '#pk': 'gsi1pk', '#sk': 'gsi1sk' },
      { ':pk': 'VMS', ':prefix': `${query.scope.tree}${query.scope.accountId}#` },
    ),
  };
}

/** Every VM by number (gsi3): the scope, zone and state are DynamoDB's; the rest needs the records. */
function installationRange(query: VmListQuery): Range {
  const conditions = new Conditions();
  if (query.scope.recursive) conditions.beginsWith('domainTree', query.scope.tree);
  else conditions.equals('domainTree', query.scope.tree);
  if (query.equals?.zoneId) conditions.equals('zoneId', query.equals.zoneId);
  const states = statesFilter(query.states);
  if (states) conditions.oneOf('state', states);
  const { zoneId: _zone, ...otherEquals } = query.equals ?? {};
  const needsRecords = Object.values(otherEquals).some((value) => value !== undefined) || query.affinityGroupId || query.predicate;
  return {
    projected: true,
    rest: needsRecords ? (vm) => recordMatches(query, vm) : undefined,
    input: conditions.into({ TableName: tableName(), IndexName: 'gsi3', KeyConditionExpression: '#pk = :pk' }, { '#pk': 'gsi3pk' }, { ':pk': 'VMS' }),
  };
}

/** The query's result pages, each page's items as DynamoDB returned them. */
async function* pages(input: QueryCommandInput): AsyncGenerator<Record<string, unknown>[]> {
  const request = { ...input };
  do {
    const answer = await dynamo().send(new QueryCommand(request));
    yield answer.Items ?? [];
    request.ExclusiveStartKey = answer.LastEvaluatedKey;
  } while (request.ExclusiveStartKey);
}

/** The records of index entries, in the entries' order. */
async function recordsOf(entries: readonly Record<string, unknown>[]): Promise<VirtualMachine[]> {
  const keys = entries.map((entry) => ({ pk: String(entry.pk), sk: String(entry.sk) }));
  const chunks: (typeof keys)[] = [];
  for (let i = 0; i < keys.length; i += 100) chunks.push(keys.slice(i, i + 100));
  const found = await Promise.all(chunks.map((chunk) => getItems<(VirtualMachine | undefined)[]>(chunk as never)));
  const vms = found.flat().filter((vm): vm is VirtualMachine => vm !== undefined);
  return vms;
}

async function overRange(query: VmListQuery, range: Range): Promise<VmPage> {
  return range.rest ? filteredInProcess(query, range, range.rest) : filteredByDynamo(query, range);
}

/** The query filters by scope and state only: the maintained state counts answer its `count`. */
const countedByState = (query: VmListQuery) =>
  !query.ids && !query.hostId && !query.affinityGroupId && !query.predicate && Object.values(query.equals ?? {}).every((value) => value === undefined);

/**
 * Every condition is in the filter expression: read entries until the page is full (each query's
 * Limit is what the page still lacks, so no more entries come back than the rows up to the page's
 * end), then let DynamoDB count the rest.
 */
async function filteredByDynamo(query: VmListQuery, range: Range): Promise<VmPage> {
  const { start, size } = query.window;
  const need = size === undefined ? Infinity : start + size;
  const taken: Record<string, unknown>[] = [];
  const request: QueryCommandInput = { ...range.input };
  let more = true;
  while (more && taken.length < need) {
    if (need !== Infinity) request.Limit = need - taken.length;
    const answer = await dynamo().send(new QueryCommand(request));
    taken.push(...(answer.Items ?? []));
    request.ExclusiveStartKey = answer.LastEvaluatedKey;
    more = request.ExclusiveStartKey !== undefined;
  }
  let count = taken.length;
  if (more && countedByState(query)) count = await countVms(query.scope, query.states);
  else if (more) {
    const counting: QueryCommandInput = { ...range.input, Select: 'COUNT' };
    counting.ExclusiveStartKey = request.ExclusiveStartKey;
    do {
      const answer = await dynamo().send(new QueryCommand(counting));
        count += answer.Count ?? 0;
      counting.ExclusiveStartKey = answer.LastEvaluatedKey;
    } while (counting.ExclusiveStartKey);
  }
  const entries = windowOf(taken, query.window);
  const rows = range.projected ? await recordsOf(entries) : entries.map((item) => withoutKeys<VirtualMachine>(item));
  return { rows, count };
}

/** Some condition needs the record: read the whole range page by page, keep the page's rows, count the rest. */
async function filteredInProcess(query: VmListQuery, range: Range, rest: (vm: VirtualMachine) => boolean): Promise<VmPage> {
  const { start, size } = query.window;
  const end = size === undefined ? Infinity : start + size;
  const rows: VirtualMachine[] = [];
  let count = 0;
  for await (const items of pages(range.input)) {
    const vms = range.projected ? await recordsOf(items) : items.map((item) => withoutKeys<VirtualMachine>(item));
    for (const vm of vms) {
      if (!rest(vm)) continue;
      if (count >= start && count < end) rows.push(vm);
      count++;
    }
  }
  return { rows, count };
}
