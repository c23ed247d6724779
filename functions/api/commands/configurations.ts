// Configuration (upstream's ListCfgsByCmd, UpdateCfgCmd, ResetCfgCmd over the typed catalogue of
// shared/settings.ts). Values are global, or set for one zone, cluster, storage pool, account or
// domain where the setting's scope allows it; a scoped value wins over the wider ones.
//
// Who: root admins everything. Domain admins list and update (upstream grants role 3
// listConfigurations and updateConfiguration): without accountid/domainid their own domain is
// assumed, as upstream does, so they reach only Domain and Account values they may access (and
// naming a zone, cluster or pool as well makes upstream's "multiple IDs" refusal). Only root admins
// reset.
import { InvalidParameter } from '../../../shared/cloudstack/errors.ts';
import { listParams, param } from '../../../shared/cloudstack/params.ts';
import { getAccount, getDomain } from '../../../shared/db/identity.ts';
import { getCluster, getZone } from '../../../shared/db/infrastructure.ts';
import { getItem } from '../../../shared/db/items.ts';
import {
  clearSetting,
  invalidValue,
  settingDefinition,
  settingsFor,
  SETTINGS,
  storeScopedSetting,
  storeSetting,
  type SettingDefinition,
  type SettingName,
  type SettingScope,
  type SettingScopeIds,
  type Settings,
} from '../../../shared/settings.ts';
import { ADMINS, type Caller, completedEvent, defineCommand, DOMAIN_ADMINS, type Recorded } from '../command.ts';
import { listResponse, matchesKeyword } from '../paging.ts';
import { checkAccess, checkDomainAccess, isDomainAdmin } from '../scope.ts';
import { noSuchEntity } from '../validate.ts';

/** The scope parameters, in the order upstream's updateConfiguration reads them. */
const SCOPE_PARAMS = [
  ['zoneid', 'Zone'],
  ['clusterid', 'Cluster'],
  ['accountid', 'Account'],
  ['domainid', 'Domain'],
  ['storageid', 'StoragePool'],
] as const;

type ScopeParam = (typeof SCOPE_PARAMS)[number][0];
type ScopeValues = Partial<Record<ScopeParam, string>>;

/** How ListCfgsByCmd and UpdateCfgCmd name a scope in their responses. */
const LOWER_SCOPE: Record<SettingScope, string> = {
  Zone: 'zone',
  Cluster: 'cluster',
  StoragePool: 'storagepool',
  Account: 'account',
  Domain: 'domain',
};

/** Storage pool records (written by the storage commands) are read by their key. */
const storagePoolExists = async (id: string) => Boolean(await getItem(`STORAGEPOOL#${id}`, 'STORAGEPOOL'));

/** Upstream's parameter processing: each UUID must name something that exists. */
async function checkScopeEntities(api: string, params: ScopeValues): Promise<void> {
  const lookups: Record<ScopeParam, (id: string) => Promise<unknown>> = {
    zoneid: getZone,
    clusterid: getCluster,
    accountid: getAccount,
    domainid: getDomain,
    storageid: async (id) => ((await storagePoolExists(id)) ? true : undefined),
  };
  for (const [name] of SCOPE_PARAMS) {
    const id = params[name];
    if (id !== undefined && !(await lookups[name](id))) throw noSuchEntity(api, name, id);
  }
}

interface ChosenScope {
  scope: SettingScope;
  id: string;
}

/** The one scope named, if any (upstream refuses more than one). */
function chosenScope(params: ScopeValues): ChosenScope | undefined {
  const named = SCOPE_PARAMS.filter(([name]) => params[name] !== undefined);
  if (named.length > 1) throw new InvalidParameter('cannot handle multiple IDs, provide only one ID corresponding to the scope');
  if (named.length === 0) return undefined;
  const [name, scope] = named[0];
  return { scope, id: params[name]! };
}

/** A domain admin may name only accounts and domains it may access. */
async function checkScopeAccess(caller: Caller, chosen: ChosenScope | undefined): Promise<void> {
  if (chosen?.scope === 'Account') {
    const account = (await getAccount(chosen.id))!;
    checkAccess(caller, { accountId: account.id, domainTree: account.domainTree }, `account ${account.name}`);
  }
  if (chosen?.scope === 'Domain') checkDomainAccess(caller, (await getDomain(chosen.id))!);
}

/** Upstream fills in the domain admin's own domain when it names no account or domain. */
function withCallerDefaults<P extends ScopeValues>(caller: Caller, params: P): P {
  if (isDomainAdmin(caller) && params.accountid === undefined && params.domainid === undefined) {
    return { ...params, domainid: caller.domain.id };
  }
  return params;
}

function findSetting(name: string): SettingDefinition {
  const definition = settingDefinition(name);
  if (!definition) throw new InvalidParameter(`Config parameter with name ${name} doesn't exist`);
  return definition;
}

/** Whether the setting may hold a value at `scope` (upstream's validateConfigurationValue scope check). */
function allowsScope(definition: SettingDefinition, scope: SettingScope, settings: Settings, forUpdate: boolean): boolean {
  if (definition.scopes.includes(scope)) return true;
  // enable.account.settings.for.domain lets Account settings be set (and listed) for a domain.
  return forUpdate && scope === 'Domain' && definition.scopes.includes('Account') && settings.globalRaw('enable.account.settings.for.domain') === 'true';
}

const idsFor = ({ scope, id }: ChosenScope): SettingScopeIds =>
  ({ Zone: { zoneId: id }, Cluster: { clusterId: id }, StoragePool: { storagePoolId: id }, Account: { accountId: id }, Domain: { domainId: id } })[scope];

/** Upstream's display type of a value (Configuration.ValueType). */
function valueType(definition: SettingDefinition): string {
  if (definition.options) return 'Select';
  switch (definition.type) {
    case 'Boolean':
      return 'Boolean';
    case 'Integer':
    case 'Long':
      return 'Number';
    case 'Float':
      return 'Decimal';
    default:
      return 'String';
  }
}

/** expunge.delay → "Expunge delay". */
const displayText = (name: string) => {
  const words = name.split('.').join(' ');
  return words.charAt(0).toUpperCase() + words.slice(1);
};

/** How a setting's declared scopes read in a global listing ("Global", "Cluster", ...). */
const declaredScope = (definition: SettingDefinition) => (definition.scopes.length ? definition.scopes.join(', ') : 'Global');

/** Upstream's ConfigurationResponse. */
function renderSetting(definition: SettingDefinition, value: string | null | undefined, scope: string) {
  return {
    category: definition.category,
    group: definition.group,
    subgroup: definition.subgroup,
    name: definition.name,
    ...(value !== null && value !== undefined && { value }),
    defaultvalue: definition.defaultValue,
    scope,
    description: definition.description,
    isdynamic: true,
    component: definition.component,
    displaytext: displayText(definition.name),
    type: valueType(definition),
    ...(definition.options && { options: definition.options.join(',') }),
  };
}

const edited = (action: string, name: string, value: string): Recorded =>
  completedEvent('CONFIGURATION.VALUE.EDIT', action, undefined, `Name: ${name} New Value: ${name.toLowerCase().includes('password') ? '*****' : value}`);

const scopeIdParams = (verb: string) => ({
  zoneid: param.uuid(`the ID of the Zone to ${verb} the parameter value for corresponding zone`).optional(),
  clusterid: param.uuid(`the ID of the Cluster to ${verb} the parameter value for corresponding cluster`).optional(),
  storageid: param.uuid(`the ID of the Storage pool to ${verb} the parameter value for corresponding storage pool`).optional(),
  accountid: param.uuid(`the ID of the Account to ${verb} the parameter value for corresponding account`).optional(),
  domainid: param.uuid(`the ID of the Domain to ${verb} the parameter value for corresponding domain`).optional(),
});

const same = (a: string | undefined, b: string) => a === undefined || a.toLowerCase() === b.toLowerCase();

const listConfigurationsCommand = defineCommand({
  name: 'listConfigurations',
  description: 'Lists all configurations.',
  params: {
    category: param.string('lists configurations by category').optional(),
    name: param.string('lists configuration by name').optional(),
    ...scopeIdParams('update'),
    group: param.string('lists configuration by group name (primarily used for UI)').optional(),
    subgroup: param.string('lists configuration by subgroup name (primarily used for UI)').optional(),
    ...listParams,
  },
  roles: DOMAIN_ADMINS,
  handler: async ({ params: given, caller, settings }) => {
    await checkScopeEntities('listConfigurations', given);
    if (given.subgroup && !given.group) throw new InvalidParameter('Configuration group name must be specified with the subgroup name', 9999);
    const params = withCallerDefaults(caller, given);
    const chosen = chosenScope(params);
    await checkScopeAccess(caller, chosen);
    const accountsViaDomain = settings.globalRaw('enable.account.settings.for.domain') === 'true';
    const matches = SETTINGS.filter((definition: SettingDefinition) => {
      if (params.name !== undefined && !definition.name.toLowerCase().includes(params.name.toLowerCase())) return false;
      if (!same(params.category, definition.category)) return false;
      if (!same(params.group, definition.group) || !same(params.subgroup, definition.subgroup)) return false;
      const { name, component, description, category } = definition;
      if (!matchesKeyword(params.keyword, name, component, description, category, settings.globalRaw(name))) return false;
      if (!chosen) return true;
      return definition.scopes.includes(chosen.scope) || (chosen.scope === 'Domain' && accountsViaDomain && definition.scopes.includes('Account'));
    }).sort((a, b) => a.name.localeCompare(b.name));
    const scoped = chosen ? await settingsFor(idsFor(chosen), settings) : undefined;
    // Upstream lists a whole group on one page.
    const paging = params.group ? { ...params, pagesize: -1, page: undefined } : params;
    return {
      body: listResponse('configuration', matches, paging, settings, (definition: SettingDefinition) =>
        chosen
          ? renderSetting(definition, scoped!.valueOf(definition.name), LOWER_SCOPE[chosen.scope])
          : renderSetting(definition, settings.globalRaw(definition.name), declaredScope(definition)),
      ),
    };
  },
});

const updateConfigurationCommand = defineCommand({
  name: 'updateConfiguration',
  description: 'Updates a configuration.',
  params: {
    name: param.string('the name of the configuration'),
    value: param.string('the value of the configuration', 4096).optional(),
    ...scopeIdParams('update'),
  },
  roles: DOMAIN_ADMINS,
  handler: async ({ params: given, caller, settings }) => {
    await checkScopeEntities('updateConfiguration', given);
    if (!given.name.trim()) throw new InvalidParameter('Empty configuration name provided', 9999);
    const params = withCallerDefaults(caller, given);
    const definition = findSetting(params.name);
    // Without a value nothing changes: the setting as it is.
    if (params.value === undefined) {
      return { body: { configuration: renderSetting(definition, settings.globalRaw(definition.name), declaredScope(definition)) } };
    }
    const chosen = chosenScope(params);
    await checkScopeAccess(caller, chosen);
    let value: string | null = params.value.trim();
    if (value === '' || value === 'null') value = chosen ? '' : null;
    if (chosen && !allowsScope(definition, chosen.scope, settings, true)) {
      throw new InvalidParameter(`Invalid scope id provided for the parameter ${definition.name}`);
    }
    const invalid = invalidValue(definition, value);
    if (invalid) throw new InvalidParameter(invalid);
    // A Select value is matched case-insensitively and stored as the catalogue spells it.
    const option = value === null ? undefined : definition.options?.find((o) => o.toLowerCase() === value!.toLowerCase());
    if (option) value = option;
    if (chosen) await storeScopedSetting(chosen.scope, chosen.id, definition.name, value);
    else if (value === null) await clearSetting(definition.name);
    else await storeSetting(definition.name as SettingName, value);
    const scope = chosen ? LOWER_SCOPE[chosen.scope] : declaredScope(definition);
    return {
      body: { configuration: renderSetting(definition, params.value, scope) },
      events: [edited('updating configuration', definition.name, value ?? '')],
    };
  },
});

const resetConfigurationCommand = defineCommand({
  name: 'resetConfiguration',
  description:
    'Resets a configuration. The configuration will be set to default value for global setting, and removed from account_details or domain_details for Account/Domain settings',
  since: '4.16.0',
  params: {
    name: param.string('the name of the configuration'),
    ...scopeIdParams('reset'),
  },
  roles: ADMINS,
  handler: async ({ params, settings }) => {
    await checkScopeEntities('resetConfiguration', params);
    if (!params.name.trim()) throw new InvalidParameter('Empty or null value provided for API arg: name', 9999);
    const definition = findSetting(params.name);
    const chosen = chosenScope(params);
    if (chosen && !definition.scopes.includes(chosen.scope)) {
      throw new InvalidParameter(`Invalid scope id provided for the parameter ${definition.name}`);
    }
    let value: string;
    if (chosen) {
      await storeScopedSetting(chosen.scope, chosen.id, definition.name, null);
      // What applies now: the next wider scope's value, or the global one.
      value = (await settingsFor(idsFor(chosen), settings)).valueOf(definition.name);
    } else {
      await clearSetting(definition.name);
      value = definition.defaultValue;
    }
    // ResetCfgCmd names the scope as upstream's ConfigKey.Scope does.
    const scope = chosen ? chosen.scope : declaredScope(definition);
    return {
      body: { configuration: renderSetting(definition, value, scope) },
      events: [edited('resetting configuration', definition.name, definition.defaultValue)],
    };
  },
});

export const configurationCommands = [listConfigurationsCommand, updateConfigurationCommand, resetConfigurationCommand];
