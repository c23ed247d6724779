// Affinity groups (upstream's CreateAffinityGroupCmd, ListAffinityGroupsCmd, DeleteAffinityGroupCmd,
// ListAffinityGroupTypesCmd and AffinityGroupServiceImpl). Mold supports the account-owned types
// `host anti-affinity` and `host affinity`; neither can be shared domain wide, so there are no
// domain-level groups. createAffinityGroup is upstream's BaseAsyncCreateCmd: the call checks and
// writes the group (answering with its id and the job), and the job answers with the group.
// deleteAffinityGroup's job removes the group; its member VMs are disassociated, as upstream.
// Updating a VM's groups (updateVMAffinityGroup) belongs to the VM commands.
import { InternalError, InvalidParameter, PermissionDenied } from '../../../shared/cloudstack/errors.ts';
import { listBody } from '../../../shared/cloudstack/render.ts';
import { listParams, param, scopeParams } from '../../../shared/cloudstack/params.ts';
import {
  AFFINITY_GROUP_TYPES,
  AffinityGroupOwnerGone,
  createAffinityGroupRecord,
  deleteAffinityGroupRecord,
  DuplicateAffinityGroupName,
  findAffinityGroupByName,
  getAffinityGroup,
  listAffinityGroupsUnder,
  type AffinityGroup,
  type AffinityGroupType,
} from '../../../shared/db/affinity-groups.ts';
import { recordEvent } from '../../../shared/db/events.ts';
import { findAccountByName, type Account, type Domain } from '../../../shared/db/identity.ts';
import type { Settings } from '../../../shared/settings.ts';
import { actorOf } from '../actor.ts';
import { startAsync } from '../async.ts';
import { ALL_ROLES, type Caller, defineCommand } from '../command.ts';
import { matchesKeyword, page } from '../paging.ts';
import { IdentityLookups } from '../render/identity.ts';
import { canAccess, checkAccess, checkDomainAccess, inScope, isDomainAdmin, isRootAdmin } from '../scope.ts';
import { noSuchEntity } from '../validate.ts';
import { domainParam, userListScope } from './identity-common.ts';

const STATE_MACHINE = 'affinity-group-command';
const RESOURCE_TYPE = 'AffinityGroup';

const ownedBy = (group: AffinityGroup) => ({ accountId: group.accountId, domainTree: group.domainTree });
const isAdminType = (caller: Caller) => isRootAdmin(caller) || isDomainAdmin(caller);
const sameText = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** Upstream's AffinityGroupResponse (via AffinityGroupJoinDaoImpl and populateOwner), in its field order. */
export async function renderAffinityGroup(group: AffinityGroup, lookups = new IdentityLookups()): Promise<Record<string, unknown>> {
  const [account, domain] = await Promise.all([lookups.account(group.accountId), lookups.domain(group.domainId)]);
  return {
    id: group.id,
    name: group.name,
    ...(group.description !== undefined && { description: group.description }),
    account: account?.name,
    domainid: group.domainId,
    domain: domain?.name,
    domainpath: domain?.path,
    type: group.type,
    ...(group.virtualMachineIds.length > 0 && { virtualmachineIds: [...group.virtualMachineIds] }),
  };
}

/** Mold keeps no projects: any projectid names nothing (upstream's ParamProcessWorker refusal). */
function refuseProject(api: string, projectid: string | undefined): void {
  if (projectid !== undefined) throw noSuchEntity(api, 'projectid', projectid);
}

/** Upstream's AccountManagerImpl.finalizeOwner without projects: who a create/delete acts for. */
async function finalizeOwner(caller: Caller, accountName: string | undefined, domain: Domain | undefined): Promise<Account> {
  if (isAdminType(caller) && accountName !== undefined && domain) {
    const owner = await findAccountByName(domain.id, accountName);
    if (!owner) throw new InvalidParameter(`Unable to find account ${accountName} in domain ${domain.id}`);
    checkDomainAccess(caller, domain);
    return owner;
  }
  if (!isAdminType(caller) && accountName !== undefined && domain) {
    if (accountName !== caller.account.name || domain.id !== caller.domain.id) {
      throw new PermissionDenied(`Can't create/list resources for account ${accountName} in domain ${domain.id}, permission denied`);
    }
    return caller.account;
  }
  if ((accountName === undefined) !== (domain === undefined)) throw new InvalidParameter('AccountName and domainId must be specified together');
  return caller.account;
}

/** Upstream's getEntityOwnerId of both commands: a root admin naming only a domain means a domain-wide group. */
async function entityOwner(caller: Caller, accountName: string | undefined, domain: Domain | undefined): Promise<Account | undefined> {
  if (domain && accountName === undefined && isRootAdmin(caller)) return undefined;
  return finalizeOwner(caller, accountName, domain);
}

const duplicateName = (name: string) => new InvalidParameter(`Unable to create affinity group, a group with name ${name} already exists.`);

const listAffinityGroupTypesCommand = defineCommand({
  name: 'listAffinityGroupTypes',
  description: 'Lists affinity group types available',
  params: { ...listParams },
  roles: ALL_ROLES,
  // Upstream lists every type its processors offer (no paging or keyword applies).
  handler: async () => ({ body: listBody('affinityGroupType', AFFINITY_GROUP_TYPES.map((type) => ({ type }))) }),
});

const createAffinityGroupCommand = defineCommand({
  name: 'createAffinityGroup',
  description: 'Creates an affinity/anti-affinity group',
  isasync: true,
  params: {
    account: param.string('an account for the affinity group. Must be used with domainId.').optional(),
    domainid: param.uuid('domainId of the account owning the affinity group').optional(),
    projectid: param.uuid('create affinity group for project').optional(),
    description: param.text('optional description of the affinity group').optional(),
    name: param.string('name of the affinity group'),
    type: param.string('Type of the affinity group from the available affinity/anti-affinity group types'),
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller }) => {
    const api = 'createAffinityGroup';
    refuseProject(api, params.projectid);
    const domain = params.domainid ? await domainParam(api, 'domainid', params.domainid.toLowerCase()) : undefined;
    const owner = await entityOwner(caller, params.account, domain);
    const type = AFFINITY_GROUP_TYPES.find((known) => known === params.type);
    if (!type) {
      throw new InvalidParameter(
        `Unable to create affinity group, invalid affinity group type: ${params.type}. Valid values are ${AFFINITY_GROUP_TYPES.join(',')}`,
      );
    }
    if (!owner) {
      // Only a root admin gets here; neither of Mold's types can be shared domain wide.
      throw new InvalidParameter(`Unable to create affinity group, account name is needed. Affinity group type ${type} cannot be shared domain wide`);
    }
    if (await findAffinityGroupByName(owner.id, params.name)) throw duplicateName(params.name);
    const group = await createGroup(owner, params.name, type, params.description);
    // Upstream's @ActionEvent(create = true) records the entity's creation before the job runs.
    await recordEvent(actorOf(caller), {
      type: 'AG.CREATE',
      description: 'Successfully created entity for Creating Affinity Group',
      state: 'Created',
      resourceId: group.id,
      resourceType: RESOURCE_TYPE,
    });
    return startAsync(caller, {
      cmd: api,
      stateMachine: STATE_MACHINE,
      input: { op: 'create', groupId: group.id, name: group.name },
      instanceType: RESOURCE_TYPE,
      instanceId: group.id,
      withId: true,
      event: { type: 'AG.CREATE', description: 'creating Affinity Group', resourceId: group.id, resourceType: RESOURCE_TYPE },
    });
  },
});

async function createGroup(owner: Account, name: string, type: AffinityGroupType, description: string | undefined): Promise<AffinityGroup> {
  try {
    return await createAffinityGroupRecord({ name, description, type, accountId: owner.id, domainId: owner.domainId, domainTree: owner.domainTree });
  } catch (error) {
    if (error instanceof DuplicateAffinityGroupName) throw duplicateName(name);
    if (error instanceof AffinityGroupOwnerGone) throw new InvalidParameter(`Unable to find account ${owner.name} in domain ${owner.domainId}`);
    throw error;
  }
}

const listAffinityGroupsCommand = defineCommand({
  name: 'listAffinityGroups',
  description: 'Lists affinity groups',
  params: {
    ...listParams,
    ...scopeParams,
    projectid: param.uuid('list objects by project; if projectid=-1 lists All VMs').optional(),
    name: param.string('lists affinity groups by name').optional(),
    virtualmachineid: param.uuid('lists affinity groups by virtual machine ID').optional(),
    id: param.uuid('list the affinity group by the ID provided').optional(),
    type: param.string('lists affinity groups by type').optional(),
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    const api = 'listAffinityGroups';
    refuseProject(api, params.projectid);
    const id = params.id?.toLowerCase();
    if (id !== undefined && !(await getAffinityGroup(id))) throw noSuchEntity(api, 'id', params.id!);
    const lookups = new IdentityLookups();
    const render = (group: AffinityGroup) => renderAffinityGroup(group, lookups);
    if (params.virtualmachineid !== undefined) {
      // Upstream lists the VM's groups (after checking the caller may see the VM), ignoring the
      // other filters. Until VM records exist, the groups naming it as a member, as the caller may see them.
      const vmId = params.virtualmachineid.toLowerCase();
      const groups = (await listAffinityGroupsUnder('/')).filter((group) => group.virtualMachineIds.includes(vmId) && canAccess(caller, ownedBy(group)));
      return { body: await renderedList(groups, params, settings, render) };
    }
    const scope = await userListScope(caller, api, { ...params, id });
    const account = scope.accountId ? await lookups.account(scope.accountId) : undefined;
    const tree = account?.domainTree ?? scope.tree ?? '/';
    const groups = (await listAffinityGroupsUnder(tree, scope.accountId))
      .filter((group) => inScope(scope, group))
      .filter((group) => id === undefined || group.id === id)
      .filter((group) => params.name === undefined || sameText(group.name, params.name))
      .filter((group) => params.type === undefined || sameText(group.type, params.type))
      .filter((group) => matchesKeyword(params.keyword, group.name, group.type));
    return { body: await renderedList(groups, params, settings, render) };
  },
});

/** One page of groups, rendered, under `affinitygroup` with the count of all matches. */
async function renderedList(
  groups: AffinityGroup[],
  params: { page?: number; pagesize?: number },
  settings: Settings,
  render: (group: AffinityGroup) => Promise<Record<string, unknown>>,
) {
  return listBody('affinitygroup', await Promise.all(page(groups, params, settings).map(render)), groups.length);
}

const deleteAffinityGroupCommand = defineCommand({
  name: 'deleteAffinityGroup',
  description: 'Deletes affinity group',
  isasync: true,
  params: {
    account: param.string('the account of the affinity group. Must be specified with domain ID').optional(),
    domainid: param.uuid('the domain ID of account owning the affinity group').optional(),
    id: param.uuid('The ID of the affinity group. Mutually exclusive with name parameter').optional(),
    name: param.string('The name of the affinity group. Mutually exclusive with ID parameter').optional(),
    projectid: param.uuid('the project of the affinity group').optional(),
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller }) => {
    const api = 'deleteAffinityGroup';
    refuseProject(api, params.projectid);
    const domain = params.domainid ? await domainParam(api, 'domainid', params.domainid.toLowerCase()) : undefined;
    let group: AffinityGroup | undefined;
    if (params.id !== undefined) {
      group = await getAffinityGroup(params.id.toLowerCase());
      if (!group) throw noSuchEntity(api, 'id', params.id);
    }
    await entityOwner(caller, params.account, domain);
    if (!group) group = await groupByName(caller, params.name, params.account, domain);
    checkAccess(caller, ownedBy(group), `affinity group ${group.id}`);
    return startAsync(caller, {
      cmd: api,
      stateMachine: STATE_MACHINE,
      input: { op: 'delete', groupId: group.id, name: group.name },
      instanceType: RESOURCE_TYPE,
      instanceId: group.id,
      event: { type: 'AG.DELETE', description: 'Deleting Affinity Group', resourceId: group.id, resourceType: RESOURCE_TYPE },
    });
  },
});

/** Upstream's getAffinityGroupByName: the named account's group (the caller's when none is named). */
async function groupByName(caller: Caller, name: string | undefined, accountName: string | undefined, domain: Domain | undefined): Promise<AffinityGroup> {
  if (name === undefined) throw new InvalidParameter('Either the affinity group Id or group name must be specified to delete the group');
  const notFound = () => new InvalidParameter(`Unable to find affinity group ${name}`);
  // A domain without an account names a domain-level group: Mold has none.
  if (accountName === undefined && domain) throw notFound();
  let accountId = caller.account.id;
  if (accountName !== undefined && domain) {
    const account = await findAccountByName(domain.id, accountName);
    if (!account) throw new InvalidParameter(`Unable to find account by name ${accountName} in domain with specified id`);
    if (account.state !== 'enabled') {
      throw new PermissionDenied(`Can't add resources to the account id=${account.id} in state=${account.state} as it's no longer active`);
    }
    accountId = account.id;
  }
  const group = await findAffinityGroupByName(accountId, name);
  if (!group) throw notFound();
  return group;
}

export const affinityGroupCommands = [createAffinityGroupCommand, deleteAffinityGroupCommand, listAffinityGroupsCommand, listAffinityGroupTypesCommand];

// ---- the work of statemachines/affinity-group-command.asl.json ----

/** createAffinityGroup's job answers with the group; deleteAffinityGroup's removes it. Idempotent. */
export async function runAffinityGroupTask(op: 'create' | 'delete', groupId: string, name?: string): Promise<Record<string, unknown>> {
  if (op === 'create') {
    const group = await getAffinityGroup(groupId);
    if (!group) throw new InternalError(`Failed to create affinity group:${name ?? groupId}`);
    return { affinitygroup: await renderAffinityGroup(group) };
  }
  // Members are disassociated with the group: the membership lives on the group's record.
  await deleteAffinityGroupRecord(groupId);
  return { success: true };
}
