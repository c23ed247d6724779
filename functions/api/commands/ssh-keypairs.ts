// SSH key pairs (upstream's CreateSSHKeyPairCmd, RegisterSSHKeyPairCmd, ListSSHKeyPairsCmd and
// DeleteSSHKeyPairCmd, with ManagementServerImpl's rules). createSSHKeyPair generates an RSA pair and
// returns its private key once; Mold keeps only the public key. Owners are named as upstream's
// AccountManagerImpl.finalizeOwner names them. Mold has no projects, so a projectid names nothing.
import { InvalidParameter, PermissionDenied } from '../../../shared/cloudstack/errors.ts';
import { listParams, param, scopeParams } from '../../../shared/cloudstack/params.ts';
import { generateSshKeyPair, publicKeyFingerprint, publicKeyFromMaterial } from '../../../shared/crypto/ssh-keys.ts';
import { findAccountByName, identityKey, type Account, type Domain } from '../../../shared/db/identity.ts';
import { getItems } from '../../../shared/db/items.ts';
import {
  createKeyPairRecord,
  deleteKeyPairRecord,
  DuplicateKeyPair,
  findKeyPairByName,
  findKeyPairByPublicKey,
  getKeyPair,
  listKeyPairsUnder,
  type SshKeyPair,
} from '../../../shared/db/ssh-keypairs.ts';
import { settingDefinition, type SettingName, type Settings } from '../../../shared/settings.ts';
import { ALL_ROLES, completedEvent, defineCommand, type Caller } from '../command.ts';
import { listResponse, matchesKeyword } from '../paging.ts';
import { checkDomainAccess, inScope, isDomainAdmin, isRootAdmin, ownedScope } from '../scope.ts';
import { noSuchEntity } from '../validate.ts';

const isAdminType = (caller: Caller) => isRootAdmin(caller) || isDomainAdmin(caller);

const ownerParams = (what: string) => ({
  account: param.string(`an optional account for the ${what}. Must be used with domainId.`).optional(),
  domainid: param.uuid(`an optional domainId for the ${what}. If the account parameter is used, domainId must also be used.`).optional(),
  projectid: param.uuid(`an optional project for the ${what}`).optional(),
});

/** Mold has no projects: any project id names nothing (upstream's parameter processing). */
function checkNoProject(api: string, projectid: string | undefined): void {
  if (projectid !== undefined) throw noSuchEntity(api, 'projectid', projectid);
}

/**
 * Upstream's finalizeOwner: admins (root, domain, resource) may name any account of a domain they
 * reach with account and domainid; anyone else only their own; one without the other is refused.
 */
async function finalizeOwner(api: string, caller: Caller, params: { account?: string; domainid?: string; projectid?: string }): Promise<{ account: Account; domain: Domain }> {
  checkNoProject(api, params.projectid);
  // domainid is an entity parameter: one that names no domain fails before anything else.
  const domain = params.domainid ? await domainParam(api, params.domainid) : undefined;
  if (params.account !== undefined && domain) {
    if (isAdminType(caller)) {
      const owner = await findAccountByName(domain.id, params.account);
      if (!owner) throw new InvalidParameter(`Unable to find account ${params.account} in domain ${domain.id}`);
      checkDomainAccess(caller, domain);
      return { account: owner, domain };
    }
    if (params.account !== caller.account.name || domain.id !== caller.domain.id) {
      throw new PermissionDenied(`Can't create/list resources for account ${params.account} in domain ${domain.id}, permission denied`);
    }
    return { account: caller.account, domain: caller.domain };
  }
  if (params.account !== undefined || domain) throw new InvalidParameter('AccountName and domainId must be specified together');
  return { account: caller.account, domain: caller.domain };
}

async function domainParam(api: string, id: string): Promise<Domain> {
  const [domain] = await getItems<[Domain]>([identityKey.domain(id.toLowerCase())]);
  if (!domain) throw noSuchEntity(api, 'domainid', id);
  return domain;
}

/** ssh.key.length (upstream's ManagementServerImpl.sshKeyLength), 2048 until the catalogue declares it. */
function keyLength(settings: Settings): number {
  const name = 'ssh.key.length';
  return settingDefinition(name) ? settings.number(name as SettingName) : 2048;
}

// ---- rendering (ApiResponseHelper.createSSHKeyPairResponse) ----

function renderKeyPair(pair: SshKeyPair, owner: { account?: Account; domain?: Domain }, privateKey?: string): Record<string, unknown> {
  return {
    ...(privateKey !== undefined && { privatekey: privateKey }),
    id: pair.id,
    name: pair.name,
    account: owner.account?.name,
    domainid: pair.domainId,
    domain: owner.domain?.name,
    domainpath: owner.domain?.path,
    fingerprint: pair.fingerprint,
    hasannotations: false,
  };
}

async function owners(pairs: readonly SshKeyPair[]) {
  const accountIds = [...new Set(pairs.map((pair) => pair.accountId))];
  const domainIds = [...new Set(pairs.map((pair) => pair.domainId))];
  const accounts = accountIds.length ? await getItems<Account[]>(accountIds.map((id) => identityKey.account(id))) : [];
  const domains = domainIds.length ? await getItems<Domain[]>(domainIds.map((id) => identityKey.domain(id))) : [];
  const accountById = new Map(accounts.filter(Boolean).map((a) => [a!.id, a!]));
  const domainById = new Map(domains.filter(Boolean).map((d) => [d!.id, d!]));
  return (pair: SshKeyPair) => ({ account: accountById.get(pair.accountId), domain: domainById.get(pair.domainId) });
}

/** The blank-name refusal upstream's SshKeyPairServiceImpl makes (an empty value is a missing one). */
function checkName(name: string): void {
  if (!name.trim()) throw new InvalidParameter("Please specify a valid name for the key pair. The key name can't be empty");
}

async function store(fields: Omit<SshKeyPair, 'id' | 'created'>, duplicateName: string, duplicateKey: string): Promise<SshKeyPair> {
  try {
    return await createKeyPairRecord(fields);
  } catch (error) {
    if (error instanceof DuplicateKeyPair) throw new InvalidParameter(error.field === 'name' ? duplicateName : duplicateKey);
    throw error;
  }
}

export const createSSHKeyPair = defineCommand({
  name: 'createSSHKeyPair',
  description: 'Create a new keypair and returns the private key',
  params: {
    name: param.string('Name of the keypair'),
    ...ownerParams('ssh key'),
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    checkName(params.name);
    const { account, domain } = await finalizeOwner('createSSHKeyPair', caller, params);
    const duplicate = `A key pair with name '${params.name}' already exists.`;
    if (await findKeyPairByName(account.id, params.name)) throw new InvalidParameter(duplicate);
    const keys = await generateSshKeyPair(keyLength(settings));
    const pair = await store(
      { name: params.name, publicKey: keys.publicKey, fingerprint: keys.fingerprint, accountId: account.id, domainId: account.domainId, domainTree: account.domainTree },
      duplicate,
      duplicate,
    );
    return {
      body: { keypair: renderKeyPair(pair, { account, domain }, keys.privateKey) },
      // Mold's own event type: upstream records no event for a created key pair.
      events: [completedEvent('SSH.KEYPAIR.CREATE', 'creating ssh keypair', undefined, `Name: ${pair.name}`)],
    };
  },
});

export const registerSSHKeyPair = defineCommand({
  name: 'registerSSHKeyPair',
  description: 'Register a public key in a keypair under a certain name',
  params: {
    name: param.string('Name of the keypair'),
    publickey: param.text('Public key material of the keypair', 5120),
    ...ownerParams('ssh key'),
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller }) => {
    checkName(params.name);
    const { account, domain } = await finalizeOwner('registerSSHKeyPair', caller, params);
    // Upstream's order: the name, then the key (which must be valid to be looked up).
    const duplicateName = `A key pair with name '${params.name}' already exists for this account.`;
    if (await findKeyPairByName(account.id, params.name)) throw new InvalidParameter(duplicateName);
    const publicKey = publicKeyFromMaterial(params.publickey);
    if (!publicKey) throw new InvalidParameter('Public key is invalid');
    const duplicateKey = `A key pair with key '${params.publickey}' already exists for this account.`;
    if (await findKeyPairByPublicKey(account.id, publicKey)) throw new InvalidParameter(duplicateKey);
    const pair = await store(
      { name: params.name, publicKey, fingerprint: publicKeyFingerprint(publicKey), accountId: account.id, domainId: account.domainId, domainTree: account.domainTree },
      duplicateName,
      duplicateKey,
    );
    return {
      body: { keypair: renderKeyPair(pair, { account, domain }) },
      events: [completedEvent('REGISTER.SSH.KEYPAIR', 'registering ssh keypair')],
    };
  },
});

export const listSSHKeyPairs = defineCommand({
  name: 'listSSHKeyPairs',
  description: 'List registered keypairs',
  params: {
    id: param.uuid('the ID of the ssh keypair').optional(),
    name: param.string('A key pair name to look for').optional(),
    fingerprint: param.string('A public key fingerprint to look for').optional(),
    ...listParams,
    ...scopeParams,
    projectid: param.uuid('list objects by project; if projectid=-1 lists All VMs').optional(),
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    checkNoProject('listSSHKeyPairs', params.projectid);
    if (params.id && !(await getKeyPair(params.id.toLowerCase()))) throw noSuchEntity('listSSHKeyPairs', 'id', params.id);
    if (params.domainid) await domainParam('listSSHKeyPairs', params.domainid);
    const scope = await ownedScope(caller, params);
    const id = params.id?.toLowerCase();
    const pairs = (await listKeyPairsUnder(scope.tree, scope.accountId)).filter(
      (pair) =>
        inScope(scope, pair) &&
        (id === undefined || pair.id === id) &&
        (params.name === undefined || pair.name.toLowerCase() === params.name.toLowerCase()) &&
        (params.fingerprint === undefined || pair.fingerprint.toLowerCase() === params.fingerprint.toLowerCase()) &&
        matchesKeyword(params.keyword, pair.name, pair.fingerprint),
    );
    const ownerOf = await owners(pairs);
    return { body: listResponse('sshkeypair', pairs, params, settings, (pair) => renderKeyPair(pair, ownerOf(pair))) };
  },
});

export const deleteSSHKeyPair = defineCommand({
  name: 'deleteSSHKeyPair',
  description: 'Deletes a keypair by name',
  params: {
    name: param.string('Name of the keypair'),
    account: param.string('the account associated with the keypair. Must be used with the domainId parameter.').optional(),
    domainid: param.uuid('the domain ID associated with the keypair').optional(),
    projectid: param.uuid('the project associated with keypair').optional(),
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller }) => {
    const { account } = await finalizeOwner('deleteSSHKeyPair', caller, params);
    const pair = await findKeyPairByName(account.id, params.name);
    if (!pair || !(await deleteKeyPairRecord(pair))) {
      throw new InvalidParameter(`A key pair with name '${params.name}' does not exist for account ${account.name} in specified domain id`);
    }
    return {
      body: { success: true },
      // Mold's own event type: upstream records no event for a deleted key pair.
      events: [completedEvent('SSH.KEYPAIR.DELETE', 'deleting ssh keypair', undefined, `Name: ${pair.name}`)],
    };
  },
});

export const sshKeyPairCommands = [createSSHKeyPair, registerSSHKeyPair, listSSHKeyPairs, deleteSSHKeyPair];

