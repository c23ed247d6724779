// Domains (upstream's CreateDomainCmd, ListDomainsCmd, ListDomainChildrenCmd, UpdateDomainCmd,
// DeleteDomainCmd). A domain admin manages the domains below its own; ROOT is never renamed or
// deleted; deleting runs statemachines/delete-domain.asl.json.
import { InternalError, InvalidParameter, PermissionDenied } from '../../../shared/cloudstack/errors.ts';
import { listParams, param, scopeParams } from '../../../shared/cloudstack/params.ts';
import { createDomain, DuplicateName, getDomain, listAllDomains, listDomainsUnder, updateDomain, type Domain } from '../../../shared/db/identity.ts';
import { startAsync } from '../async.ts';
import { ALL_ROLES, defineCommand, type Caller } from '../command.ts';
import { listResponse, matchesKeyword } from '../paging.ts';
import { renderDomains } from '../render/identity.ts';
import { checkDomainAccess, describeAccount, isRootAdmin } from '../scope.ts';
import { checkExternalId, checkNetworkDomain, completed, domainParam, rootDomainId } from './identity-common.ts';

const DOMAIN_MANAGERS = ['Admin', 'DomainAdmin'] as const;
const DOMAIN_READERS = ['Admin', 'ResourceAdmin', 'DomainAdmin'] as const;

/** Domains a domain admin manages: strictly below its own. */
function checkManagesDomain(caller: Caller, domain: Domain): void {
  if (isRootAdmin(caller)) return;
  if (domain.id !== caller.domain.id && domain.tree.startsWith(caller.domain.tree)) return;
  throw new PermissionDenied(`${describeAccount(caller.account)} does not have permission to operate within domain id=${domain.id}`);
}

const byCreation = (a: Domain, b: Domain) => a.created.localeCompare(b.created) || a.path.localeCompare(b.path);

const DETAILS = ['all', 'resource', 'min'] as const;

const createDomainCommand = defineCommand({
  name: 'createDomain',
  description: 'Creates a domain',
  params: {
    name: param.string('creates domain with this name'),
    parentdomainid: param.uuid('assigns new domain a parent domain by domain ID of the parent.  If no parent domain is specified, the ROOT domain is assumed.').optional(),
    networkdomain: param.string("Network domain for networks in the domain").optional(),
    domainid: param.string('Domain UUID, required for adding domain from another Region').optional(),
  },
  roles: DOMAIN_MANAGERS,
  handler: async ({ params, caller }) => {
    const parent = await domainParam('createDomain', 'parentdomainid', params.parentdomainid ?? rootDomainId(caller));
    if (parent.state !== 'Active') throw new InternalError(`The domain cannot be created as the parent domain ${parent.name} is being deleted`);
    checkDomainAccess(caller, parent);
    checkNetworkDomain(params.networkdomain);
    const id = checkExternalId('createDomain', 'domainid', params.domainid);
    if (id && (await getDomain(id))) throw new InvalidParameter(`Domain with UUID [${id}] already exists`);
    const siblings = (await listDomainsUnder(parent.tree)).filter((domain) => domain.parentId === parent.id);
    const duplicate = () => new InvalidParameter(`Domain with name [${params.name}] already exists for the parent with ID [${parent.id}].`);
    if (siblings.some((domain) => domain.name.toLowerCase() === params.name.toLowerCase())) throw duplicate();
    const domain = await createDomain({ name: params.name, parent, networkdomain: params.networkdomain, id }).catch((error) => {
      throw error instanceof DuplicateName ? duplicate() : error;
    });
    const [rendered] = await renderDomains([domain]);
    return {
      body: { domain: rendered },
      events: [completed('DOMAIN.CREATE', 'creating Domain', `Domain Name: ${domain.name}, Parent DomainId :${parent.id}`, { id: domain.id, type: 'Domain' })],
    };
  },
});

const listDomainsCommand = defineCommand({
  name: 'listDomains',
  description: 'Lists domains and provides detailed information for listed domains',
  params: {
    id: param.uuid('List domain by domain ID.').optional(),
    level: param.integer('List domains by domain level.').optional(),
    name: param.string('List domain by domain name.').optional(),
    listall: scopeParams.listall,
    details: param.list(param.string('detail'), 'comma separated list of domain details requested, value can be a list of [ all, resource, min]').optional(),
    ...listParams,
  },
  roles: ALL_ROLES,
  handler: async ({ params, caller, settings }) => {
    if (params.details?.some((detail) => !(DETAILS as readonly string[]).includes(detail))) {
      throw new InvalidParameter('The details parameter contains a non permitted value. The allowed values are [all, resource, min]');
    }
    let candidates: Domain[];
    if (params.id) {
      const domain = await domainParam('listDomains', 'id', params.id);
      checkDomainAccess(caller, domain);
      candidates = [domain];
    } else if (isRootAdmin(caller)) {
      candidates = await listAllDomains();
    } else if (params.listall && caller.role.type !== 'User') {
      candidates = await listDomainsUnder(caller.domain.tree);
    } else {
      // A user sees its own domain only (upstream also lists the subtree with listall).
      candidates = [caller.domain];
    }
    const matches = candidates
      .filter((domain) => domain.state === 'Active')
      .filter((domain) => params.name === undefined || domain.name.toLowerCase() === params.name.toLowerCase())
      .filter((domain) => params.level === undefined || domain.level === params.level)
      .filter((domain) => matchesKeyword(params.keyword, domain.name))
      .sort(byCreation);
    const rendered = await renderDomains(matches);
    const byId = new Map(rendered.map((domain) => [domain.id, domain]));
    return { body: listResponse('domain', matches, params, settings, (domain) => byId.get(domain.id)!) };
  },
});

const listDomainChildrenCommand = defineCommand({
  name: 'listDomainChildren',
  description: 'Lists all children domains belonging to a specified domain',
  params: {
    id: param.uuid('list children domain by parent domain ID.').optional(),
    name: param.string('list children domains by name').optional(),
    isrecursive: param.boolean('to return the entire tree, use the value "true". To return the first level children, use the value "false".').optional(),
    listall: scopeParams.listall,
    ...listParams,
  },
  roles: DOMAIN_READERS,
  handler: async ({ params, caller, settings }) => {
    let parent = caller.domain;
    if (params.id) {
      parent = await domainParam('listDomainChildren', 'id', params.id);
      checkDomainAccess(caller, parent);
    }
    const below = (await listDomainsUnder(parent.tree)).filter((domain) => domain.id !== parent.id);
    // Upstream: the whole subtree with isrecursive (and not listall), else the first level.
    const recursive = params.isrecursive && !params.listall;
    const matches = below
      .filter((domain) => recursive || domain.parentId === parent.id)
      .filter((domain) => domain.state === 'Active')
      .filter((domain) => matchesKeyword(params.name, domain.name))
      .filter((domain) => matchesKeyword(params.keyword, domain.name))
      .sort(byCreation);
    const rendered = await renderDomains(matches);
    const byId = new Map(rendered.map((domain) => [domain.id, domain]));
    return { body: listResponse('domain', matches, params, settings, (domain) => byId.get(domain.id)!) };
  },
});

const updateDomainCommand = defineCommand({
  name: 'updateDomain',
  description: 'Updates a domain with a new name',
  params: {
    id: param.uuid('ID of domain to update'),
    name: param.string('updates domain with this name').optional(),
    networkdomain: param
      .string("Network domain for the domain's networks; empty string will update domainName with NULL value")
      .optional(),
  },
  roles: DOMAIN_MANAGERS,
  handler: async ({ params, caller }) => {
    const domain = await domainParam('updateDomain', 'id', params.id);
    if (!domain.parentId && params.name !== undefined) throw new InvalidParameter('ROOT domain can not be edited with a new name');
    checkManagesDomain(caller, domain);
    const duplicate = () =>
      new InvalidParameter(`Failed to update specified domain id with name '${params.name}' since it already exists in the system`);
    if (params.name !== undefined && domain.parentId) {
      const parent = await getDomain(domain.parentId);
      const siblings = parent ? (await listDomainsUnder(parent.tree)).filter((d) => d.parentId === parent.id) : [];
      if (siblings.some((d) => d.id !== domain.id && d.name.toLowerCase() === params.name!.toLowerCase())) throw duplicate();
    }
    checkNetworkDomain(params.networkdomain);
    const updated = await updateDomain(domain, {
      ...(params.name !== undefined && { name: params.name }),
      ...(params.networkdomain !== undefined && { networkdomain: params.networkdomain }),
    }).catch((error) => {
      throw error instanceof DuplicateName ? duplicate() : error;
    });
    const [rendered] = await renderDomains([updated]);
    return {
      body: { domain: rendered },
      events: [completed('DOMAIN.UPDATE', 'updating Domain', `Domain Id: ${domain.id}`, { id: domain.id, type: 'Domain' })],
    };
  },
});

const deleteDomainCommand = defineCommand({
  name: 'deleteDomain',
  description: 'Deletes a specified domain',
  isasync: true,
  params: {
    id: param.uuid('ID of domain to delete'),
    cleanup: param
      .boolean('true if all domain resources (child domains, accounts) have to be cleaned up, false otherwise')
      .optional(),
  },
  roles: DOMAIN_MANAGERS,
  handler: async ({ params, caller }) => {
    const domain = await domainParam('deleteDomain', 'id', params.id);
    if (!domain.parentId) throw new PermissionDenied("Can't delete ROOT domain");
    checkManagesDomain(caller, domain);
    return startAsync(caller, {
      cmd: 'deleteDomain',
      stateMachine: 'delete-domain',
      input: { domainId: domain.id, cleanup: Boolean(params.cleanup) },
      instanceType: 'Domain',
      instanceId: domain.id,
      event: { type: 'DOMAIN.DELETE', description: `Deleting domain with ID: ${domain.id}`, resourceId: domain.id, resourceType: 'Domain' },
    });
  },
});

export const domainCommands = [createDomainCommand, listDomainsCommand, listDomainChildrenCommand, updateDomainCommand, deleteDomainCommand];
