// Templates and ISOs (upstream's vm_template with template_zone_ref / template_store_ref): one
// record each, holding its copies per zone with their download state. Registering writes the record
// with every copy "not downloaded"; the agent downloads and reports through markTemplateDownloading,
// markTemplateDownloaded and markTemplateFailed. Names need not be unique (as upstream).
import { DeleteCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { dynamo } from '../aws.ts';
import { getItem, isConditionFailure, queryIndex, tableName } from './items.ts';
import { cloudstackDate } from './jobs.ts';
import { incrementResources, releaseResources, reserveResources } from './limits.ts';

export type TemplateFormat = 'QCOW2' | 'RAW' | 'ISO';
export type TemplateType = 'USER' | 'ROUTING' | 'SYSTEM' | 'BUILTIN';
/** Upstream's VMTemplateStorageResourceAssoc.Status values Mold uses. */
export type DownloadState = 'NOT_DOWNLOADED' | 'DOWNLOAD_IN_PROGRESS' | 'DOWNLOADED' | 'DOWNLOAD_ERROR';

/** The template's copy in one zone's secondary storage. */
export interface ZoneCopy {
  downloadState: DownloadState;
  downloadPercent: number;
  /** Why the download failed (shown as the status). */
  errorString?: string;
  size?: number;
  physicalsize?: number;
  installPath?: string;
  /** The primary storage pool the copy was downloaded into (Mold downloads straight to primary storage). */
  poolId?: string;
  updated?: string;
}

export interface Template {
  id: string;
  /** 'template' or 'iso': they share the record shape, as upstream's vm_template. */
  kind: 'template' | 'iso';
  name: string;
  displaytext: string;
  url: string;
  format: TemplateFormat;
  hypervisor: 'KVM' | 'None';
  ostypeid: string;
  ispublic: boolean;
  isfeatured: boolean;
  isextractable: boolean;
  passwordenabled: boolean;
  sshkeyenabled: boolean;
  requireshvm: boolean;
  isdynamicallyscalable: boolean;
  directdownload: boolean;
  bootable: boolean;
  bits: number;
  checksum?: string;
  templatetag?: string;
  templatetype: TemplateType;
  details?: Record<string, string>;
  /** Registered for all zones (zoneid -1): every zone, present or future, gets a copy. */
  crossZones: boolean;
  /** Copies by zone id. */
  zones: Record<string, ZoneCopy>;
  /** Accounts the owner shared it with (upstream's launch permissions). */
  sharedAccountIds: string[];
  accountId: string;
  domainId: string;
  domainTree: string;
  created: string;
  updated?: string;
}

export class TemplateGone extends Error {}

export const templateKey = (id: string) => ({ pk: `TEMPLATE#${id}`, sk: 'TEMPLATE' });
const LISTING = { template: 'TEMPLATES', iso: 'ISOS' } as const;

function templateItem(template: Template) {
  // Creation order, as upstream's default sort (sort_key, then id).
  return { ...templateKey(template.id), gsi1pk: LISTING[template.kind], gsi1sk: `${new Date().toISOString()}#${template.id}`, ...template };
}

export const notDownloaded = (): ZoneCopy => ({ downloadState: 'NOT_DOWNLOADED', downloadPercent: 0 });

export type NewTemplate = Omit<Template, 'id' | 'created' | 'zones' | 'sharedAccountIds'> & { zoneIds: string[] };

export async function createTemplate(fields: NewTemplate): Promise<Template> {
  const { zoneIds, ...rest } = fields;
  const template: Template = {
    ...rest,
    id: randomUUID(),
    zones: Object.fromEntries(zoneIds.map((zoneId) => [zoneId, notDownloaded()])),
    sharedAccountIds: [],
    created: cloudstackDate(),
  };
  // The owner's `template` limit (templates and ISOs alike, as upstream): 532 when exceeded.
  await reserveResources(template.accountId, { template: 1 });
  try {
    await dynamo().send(
      new PutCommand({ TableName: tableName(), Item: templateItem(template), ConditionExpression: 'attribute_not_exists(pk)' }),
    );
  } catch (error) {
    await releaseResources(template.accountId, { template: 1 });
    throw error;
  }
  return template;
}

/** Bytes of secondary storage a template's downloaded copies hold (upstream counts their size). */
const downloadedBytes = (copies: ZoneCopy[]) => copies.reduce((sum, copy) => sum + (copy.downloadState === 'DOWNLOADED' ? (copy.size ?? 0) : 0), 0);

export const getTemplate = (id: string) => getItem<Template>(templateKey(id).pk, 'TEMPLATE');

/** Every template (or ISO), in creation order. */
export const listTemplateRecords = (kind: Template['kind']) => queryIndex<Template>({ index: 'gsi1', partition: LISTING[kind] });

/** The zones a template has (or, cross-zone, should have) a copy in, given the zones that exist. */
export function templateZoneIds(template: Template, existingZoneIds: readonly string[]): string[] {
  const own = Object.keys(template.zones);
  if (!template.crossZones) return own;
  return [...new Set([...own, ...existingZoneIds])];
}

export const zoneCopy = (template: Template, zoneId: string): ZoneCopy => template.zones[zoneId] ?? notDownloaded();

type Editable = Partial<
  Pick<
    Template,
    | 'name'
    | 'displaytext'
    | 'ostypeid'
    | 'format'
    | 'ispublic'
    | 'isfeatured'
    | 'isextractable'
    | 'passwordenabled'
    | 'sshkeyenabled'
    | 'requireshvm'
    | 'isdynamicallyscalable'
    | 'bootable'
    | 'templatetype'
    | 'details'
    | 'sharedAccountIds'
  >
>;

async function update(id: string, sets: Record<string, unknown>, names: Record<string, string> = {}): Promise<Template> {
  const expressionNames: Record<string, string> = { ...names };
  const values: Record<string, unknown> = {};
  const clauses: string[] = [];
  let n = 0;
  for (const [path, value] of Object.entries(sets)) {
    const placeholder = `:v${n++}`;
    values[placeholder] = value;
    clauses.push(`${path} = ${placeholder}`);
  }
  try {
    const { Attributes } = await dynamo().send(
      new UpdateCommand({
        TableName: tableName(),
        Key: templateKey(id),
        UpdateExpression: `SET ${clauses.join(', ')}`,
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeNames: Object.keys(expressionNames).length ? expressionNames : undefined,
        ExpressionAttributeValues: values,
        ReturnValues: 'ALL_NEW',
      }),
    );
    const { pk: _pk, sk: _sk, gsi1pk: _g1, gsi1sk: _g2, ...record } = Attributes as Record<string, unknown>;
    return record as unknown as Template;
  } catch (error) {
    if (isConditionFailure(error)) throw new TemplateGone(`template ${id} no longer exists`);
    throw error;
  }
}

/** updateTemplate / updateTemplatePermissions: the given fields, nothing else. */
export async function updateTemplateFields(id: string, changes: Editable): Promise<Template> {
  const sets: Record<string, unknown> = { '#updated': cloudstackDate() };
  const names: Record<string, string> = { '#updated': 'updated' };
  for (const [field, value] of Object.entries(changes)) {
    if (value === undefined) continue;
    names[`#${field}`] = field;
    sets[`#${field}`] = value;
  }
  return update(id, sets, names);
}

async function setZoneCopy(id: string, zoneId: string, copy: ZoneCopy): Promise<Template> {
  return update(id, { '#zones.#zone': { ...copy, updated: cloudstackDate() } }, { '#zones': 'zones', '#zone': zoneId });
}

/** The agent started (or progressed) the download of the template into a zone. */
export function markTemplateDownloading(id: string, zoneId: string, percent: number): Promise<Template> {
  return setZoneCopy(id, zoneId, { downloadState: 'DOWNLOAD_IN_PROGRESS', downloadPercent: Math.max(0, Math.min(100, Math.round(percent))) });
}

/** The template is in the zone's secondary storage: it is ready there (`isready`). */
export async function markTemplateDownloaded(
  id: string,
  zoneId: string,
  result: { size?: number; physicalsize?: number; installPath?: string; poolId?: string } = {},
): Promise<Template> {
  const before = await getTemplate(id);
  const updated = await setZoneCopy(id, zoneId, { downloadState: 'DOWNLOADED', downloadPercent: 100, ...result });
  // The owner's secondary_storage counts the copy once it is there (upstream's download callback).
  if (before && before.zones[zoneId]?.downloadState !== 'DOWNLOADED') await incrementResources(updated.accountId, { secondary_storage: result.size ?? 0 });
  return updated;
}

/** The download into a zone failed; `reason` becomes the status upstream shows. */
export function markTemplateFailed(id: string, zoneId: string, reason: string): Promise<Template> {
  return setZoneCopy(id, zoneId, { downloadState: 'DOWNLOAD_ERROR', downloadPercent: 0, errorString: reason });
}

/**
 * Removes the template's copy in one zone; when that was its last zone (or no zone is given) the
 * template itself goes. A cross-zone template losing one zone keeps the others explicitly.
 * Idempotent: a template already gone is fine.
 */
export async function deleteTemplateRecord(id: string, zoneId?: string, existingZoneIds: readonly string[] = []): Promise<'deleted' | 'zone-removed' | 'gone'> {
  const template = await getTemplate(id);
  if (!template) return 'gone';
  if (zoneId) {
    const remaining = templateZoneIds(template, existingZoneIds).filter((z) => z !== zoneId);
    if (remaining.length > 0) {
      const zones = Object.fromEntries(remaining.map((z) => [z, zoneCopy(template, z)]));
      const removed = await update(id, { '#zones': zones, '#crossZones': false }, { '#zones': 'zones', '#crossZones': 'crossZones' }).then(
        () => true,
        (error) => {
          if (!(error instanceof TemplateGone)) throw error;
          return false;
        },
      );
      if (removed) await releaseResources(template.accountId, { secondary_storage: downloadedBytes(template.zones[zoneId] ? [template.zones[zoneId]] : []) });
      return 'zone-removed';
    }
  }
  try {
    await dynamo().send(new DeleteCommand({ TableName: tableName(), Key: templateKey(id), ConditionExpression: 'attribute_exists(pk)' }));
  } catch (error) {
    if (isConditionFailure(error)) return 'gone'; // deleted by a concurrent step, which gave its resources back
    throw error;
  }
  await releaseResources(template.accountId, { template: 1, secondary_storage: downloadedBytes(Object.values(template.zones)) });
  return 'deleted';
}
