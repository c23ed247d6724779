// listExtensions (upstream 4.21's ListExtensionsCmd). Mold has no extensions (upstream's framework for
// orchestrators outside CloudStack): the answer is upstream's empty list, after the same checks of what
// it is given. The UI's Register Template form asks for it as it opens (admins) and shows a
// notification that stays until closed when the command is refused.
import { InvalidParameter } from '../../../shared/cloudstack/errors.ts';
import { listParams, param } from '../../../shared/cloudstack/params.ts';
import { ADMINS, defineCommand } from '../command.ts';
import { listResponse } from '../paging.ts';
import { noSuchEntity } from '../validate.ts';

const API = 'listExtensions';
/** Upstream's ApiConstants.ExtensionDetails. */
const DETAILS = ['all', 'resources', 'external', 'min'];

const listExtensions = defineCommand({
  name: API,
  description: 'Lists extensions. Mold: there are none, so the list is empty.',
  params: {
    name: param.string('Name of the extension').optional(),
    id: param.uuid('uuid of the extension').optional(),
    details: param.list(param.string('a detail'), 'comma separated list of extension details requested, value can be a list of [all, resources, external, min]. When no parameters are passed, all the details are returned.').optional(),
    ...listParams,
  },
  roles: ADMINS,
  handler: async ({ params, settings }) => {
    if (params.details?.some((detail) => !DETAILS.includes(detail))) {
      throw new InvalidParameter(`The details parameter contains a non permitted value.The allowed values are [${DETAILS.join(', ')}]`);
    }
    if (params.id !== undefined) throw noSuchEntity(API, 'id', params.id);
    return { body: listResponse('extension', [], params, settings, (extension) => extension) };
  },
});

export const extensionCommands = [listExtensions];
