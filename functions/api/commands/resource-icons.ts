// listResourceIcon (upstream's ListResourceIconCmd). Mold keeps no resource icons (there is no
// uploadResourceIcon): the answer is upstream's list for resources without one, empty. The UI asks for
// the icons of every resource it draws (a zone's, beside its pods, clusters and hosts); refused, a
// page's request races the next navigation and the page throws.
import { listBody } from '../../../shared/cloudstack/render.ts';
import { param } from '../../../shared/cloudstack/params.ts';
import { ALL_ROLES, defineCommand } from '../command.ts';

const listResourceIcon = defineCommand({
  name: 'listResourceIcon',
  description: 'Lists the resource icon. Mold: no resource has one, so the list is empty.',
  params: {
    resourceids: param.list(param.string('a resource id'), 'list of resources to upload the icon/image for'),
    resourcetype: param.string('type of the resource'),
  },
  roles: ALL_ROLES,
  handler: async () => ({ body: listBody('icon', []) }),
});

export const resourceIconCommands = [listResourceIcon];
