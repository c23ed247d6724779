// What the CloudStack UI's login page asks before anyone has logged in: the GUI theme for its
// address (upstream's ListGuiThemesCmd, 4.21) and the OAuth providers to offer (upstream's
// ListOAuthProvidersCmd). Upstream answers both without a session. Mold has neither themes nor
// OAuth login, so both answer upstream's empty list and the UI shows its own look and the password
// form. listIdps (SAML) and forgotPassword stay unlisted: upstream without those plugins enabled
// refuses them too, and the UI treats that refusal as "not offered" (docs/ui.md).
import { listParams, param } from '../../../shared/cloudstack/params.ts';
import { ALL_ROLES, defineCommand, definePublicCommand } from '../command.ts';
import { listResponse } from '../paging.ts';
import { noSuchEntity } from '../validate.ts';

const listGuiThemes = definePublicCommand({
  public: true,
  name: 'listGuiThemes',
  since: '4.21.0.0',
  description: 'Lists GUI themes. Mold: there are no themes (none can be created), so the list is empty and the UI keeps its own look.',
  params: {
    id: param.uuid('The theme ID.').optional(),
    name: param.string('The name of the theme.').optional(),
    commonname: param.string('The internet Common Name (CN) to be filtered.').optional(),
    domainid: param.uuid('The ID of the domain to be filtered.').optional(),
    accountid: param.uuid('The ID of the account to be filtered.').optional(),
    listall: param.boolean('Whether to list all themes.').optional(),
    showremoved: param.boolean('Whether to list removed themes.').optional(),
    showpublic: param.boolean('Whether to list public themes.').optional(),
    listonlydefaulttheme: param.boolean('Whether to only list the default theme.').optional(),
    ...listParams,
  },
  handler: async ({ params, settings }) => ({ body: listResponse('guiThemes', [], params, settings, (theme) => theme) }),
});

const listOauthProvider = definePublicCommand({
  public: true,
  name: 'listOauthProvider',
  since: '4.19.0',
  description: 'List OAuth providers registered. Mold: OAuth login is not offered, so the list is empty and the UI shows only the password form.',
  params: {
    id: param.uuid('the ID of the OAuth provider').optional(),
    provider: param.string('Name of the provider').optional(),
    ...listParams,
  },
  handler: async ({ params, settings }) => ({ body: listResponse('oauthprovider', [], params, settings, (provider) => provider) }),
});

/**
 * Right after login the UI asks for the LDAP configurations and, should the call fail before its
 * listApis answer arrives, abandons the login. Mold authenticates no one through LDAP: the list is
 * empty, under upstream's own envelope name (LdapListConfigurationCmd's getCommandName).
 */
const listLdapConfigurations = defineCommand({
  name: 'listLdapConfigurations',
  since: '4.2.0',
  description: 'Lists all LDAP configurations. Mold: LDAP authentication is not offered, so the list is empty.',
  responseName: 'ldapconfigurationresponse',
  params: {
    hostname: param.string('Hostname').optional(),
    port: param.integer('Port').optional(),
    domainid: param.uuid('Linked domain').optional(),
    id: param.uuid('list ldap configuration by ID; when passed, all other parameters are ignored').optional(),
    listall: param.boolean('If set to true, and no domainid specified, list all LDAP configurations irrespective of the linked domain').optional(),
    ...listParams,
  },
  roles: ALL_ROLES,
  handler: async ({ params, settings }) => {
    if (params.id !== undefined) throw noSuchEntity('listLdapConfigurations', 'id', params.id);
    return { body: listResponse('LdapConfiguration', [], params, settings, (configuration) => configuration) };
  },
});

export const loginPageCommands = [listGuiThemes, listOauthProvider, listLdapConfigurations];
