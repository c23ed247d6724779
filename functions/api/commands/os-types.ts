// The OS catalogue (upstream's ListGuestOsCmd and ListGuestOsCategoriesCmd), answered from the
// shipped catalogue in shared/catalogue/os-types.ts.
import { listParams, param } from '../../../shared/cloudstack/params.ts';
import { getOsCategory, getOsType, OS_CATEGORIES, OS_TYPES, type OsType } from '../../../shared/catalogue/os-types.ts';
import { getZone } from '../../../shared/db/infrastructure.ts';
import { listTemplateRecords } from '../../../shared/db/templates.ts';
import { noSuchEntity } from '../validate.ts';
import { ALL_ROLES, defineCommand } from '../command.ts';
import { listResponse, matchesKeyword } from '../paging.ts';

/** Upstream's GuestOSResponse. */
export function renderOsType(type: OsType) {
  return {
    id: type.id,
    name: type.description,
    description: type.description,
    oscategoryid: type.oscategoryid,
    oscategoryname: getOsCategory(type.oscategoryid)?.name,
    isuserdefined: 'false',
    fordisplay: true,
  };
}

const sameId = (a: string | undefined, b: string) => a === undefined || a.toLowerCase() === b.toLowerCase();

const listOsTypesCommand = defineCommand({
  name: 'listOsTypes',
  description: 'Lists all supported OS types for this cloud.',
  params: {
    id: param.uuid('list by Os type Id').optional(),
    oscategoryid: param.uuid('list by Os Category id').optional(),
    description: param.text('list os by description').optional(),
    fordisplay: param.boolean('list resources by display flag; only ROOT admin is eligible to pass this parameter').optional(),
    ...listParams,
  },
  roles: ALL_ROLES,
  handler: async ({ params, settings }) => {
    if (params.id && !getOsType(params.id)) throw noSuchEntity('listOsTypes', 'id', params.id);
    if (params.oscategoryid && !getOsCategory(params.oscategoryid)) throw noSuchEntity('listOsTypes', 'oscategoryid', params.oscategoryid);
    const matches = OS_TYPES.filter((type) => sameId(params.id, type.id))
      .filter((type) => sameId(params.oscategoryid, type.oscategoryid))
      .filter((type) => matchesKeyword(params.description, type.description))
      .filter((type) => params.fordisplay !== false)
      .filter((type) => matchesKeyword(params.keyword, type.description));
    return { body: listResponse('ostype', matches, params, settings, renderOsType) };
  },
});

const listOsCategoriesCommand = defineCommand({
  name: 'listOsCategories',
  description: 'Lists all supported OS categories for this cloud.',
  params: {
    id: param.uuid('list Os category by id').optional(),
    name: param.string('list os category by name').optional(),
    zoneid: param.uuid('List available OS categories types for the zone').optional(),
    isiso: param.boolean('List OS categories for which an ISO is available').optional(),
    isvnf: param.boolean('List OS categories for which a VNF template is available').optional(),
    ...listParams,
  },
  roles: ALL_ROLES,
  handler: async ({ params, settings }) => {
    if (params.id && !getOsCategory(params.id)) throw noSuchEntity('listOsCategories', 'id', params.id);
    if (params.zoneid && !(await getZone(params.zoneid.toLowerCase()))) throw noSuchEntity('listOsCategories', 'zoneid', params.zoneid);
    const available = await categoriesWithImages(params);
    const matches = OS_CATEGORIES.filter((category) => sameId(params.id, category.id))
      .filter((category) => available === undefined || available.has(category.id))
      .filter((category) => matchesKeyword(params.name, category.name))
      .filter((category) => matchesKeyword(params.keyword, category.name));
    return { body: listResponse('oscategory', matches, params, settings, (category) => ({ id: category.id, name: category.name })) };
  },
});

/**
 * With zoneid, isiso or isvnf (upstream 4.20.1, which the UI's Add Instance wizard sends): only the
 * categories of the images there are (templates, or ISOs with isiso=true) in the zone, so the wizard
 * offers the categories it has images for. Mold has no VNF templates: isvnf=true finds none.
 */
async function categoriesWithImages(params: { zoneid?: string; isiso?: boolean; isvnf?: boolean }): Promise<Set<string> | undefined> {
  if (params.zoneid === undefined && params.isiso === undefined && params.isvnf === undefined) return undefined;
  if (params.isvnf) return new Set();
  const zoneId = params.zoneid?.toLowerCase();
  const images = (await listTemplateRecords(params.isiso ? 'iso' : 'template')).filter((image) => zoneId === undefined || image.crossZones || zoneId in image.zones);
  return new Set(images.flatMap((image) => getOsType(image.ostypeid)?.oscategoryid ?? []));
}

export const osTypeCommands = [listOsTypesCommand, listOsCategoriesCommand];
