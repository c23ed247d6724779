// Templates and ISOs go straight to primary storage (`<pool path>/<id>.<format>`: .qcow2, .iso, …),
// downloaded by the zone's agent: one agent-command job (op downloadTemplate) per zone that has somewhere
// to put the copy. registerTemplate and registerIso start them; the
// sweeper starts them later for copies that had nowhere to go when they were registered.
import { holdsLease } from './agent-leases.ts';
import { getAgent } from './db/agents.ts';
import type { Actor } from './db/events.ts';
import { isMaintenanceState, listHostRecords, type Host } from './db/hosts.ts';
import { listStoragePools, type StoragePool } from './db/storage.ts';
import { listTemplateRecords, markTemplateFailed, zoneCopy, type Template } from './db/templates.ts';
import { startJob } from './orchestration.ts';
import { cloudstackMillis } from './db/jobs.ts';

/**
 * Where a zone's copy can be downloaded: a SharedMountPoint pool that is Up (its path is the same on
 * every host) and an Up host of an enabled agent that reaches it (in the pool's cluster, or any for a
 * zone-wide pool). Other pool types have no path Mold knows on the host yet.
 */
async function downloadTarget(zoneId: string): Promise<{ pool: StoragePool; host: Host; agentId: string } | undefined> {
  const pools = (await listStoragePools({ zoneId })).filter((pool) => pool.type === 'SharedMountPoint' && pool.state === 'Up');
  if (pools.length === 0) return undefined;
  const hosts = (await listHostRecords({ zoneId })).filter((host) => host.status === 'Up' && host.agentId && !isMaintenanceState(host.resourcestate));
  for (const pool of pools) {
    for (const host of hosts.filter((h) => pool.scope === 'ZONE' || h.clusterId === pool.clusterId)) {
      const agent = await getAgent(host.agentId!);
      // The host's holder, while it holds its lease (a lapsed one's hosts are about to move).
      if (agent && holdsLease(agent, Date.now())) return { pool, host, agentId: agent.id };
    }
  }
  return undefined;
}

/**
 * Starts a download job for each of `zoneIds` that has somewhere to put the template; a zone without
 * one keeps its copy "not downloaded" until the sweeper finds it one. Returns the zones started.
 */
export async function startTemplateDownloads(actor: Actor, template: Template, zoneIds: string[]): Promise<string[]> {
  const started: string[] = [];
  for (const zoneId of zoneIds) {
    const target = await downloadTarget(zoneId);
    if (!target) continue;
    const destination = `${target.pool.path.replace(/\/+$/, '')}/${template.id}.${template.format.toLowerCase()}`;
    try {
      const iso = template.kind === 'iso';
      await startJob({ cmd: iso ? 'registerIso' : 'registerTemplate', actor, jobinstancetype: iso ? 'Iso' : 'Template', jobinstanceid: template.id }, 'agent-command', {
        op: 'downloadTemplate',
        args: { agentId: target.agentId, templateId: template.id, zoneId, hostId: target.host.id, poolId: target.pool.id, destination },
      });
      started.push(zoneId);
    } catch (error) {
      // The registration stands; the copy says why it is not coming.
      await markTemplateFailed(template.id, zoneId, `The download could not be started: ${(error as Error).message}`);
    }
  }
  return started;
}

/** How long a new copy is left to its registration's own download before the sweeper steps in. */
const REGISTRATION_GRACE_MS = 10_000;

/**
 * Templates with zone copies still "not downloaded" (their zone had no Up host with a pool when they
 * were registered) get their downloads started now, where a zone has one. A started job marks the copy
 * in progress at once, so the next pass leaves it alone.
 */
export async function startPendingDownloads(actor: Actor, now = Date.now()): Promise<number> {
  let started = 0;
  for (const template of [...(await listTemplateRecords('template')), ...(await listTemplateRecords('iso'))]) {
    if (now - cloudstackMillis(template.created) < REGISTRATION_GRACE_MS) continue;
    const pending = Object.keys(template.zones).filter((zoneId) => zoneCopy(template, zoneId).downloadState === 'NOT_DOWNLOADED');
    if (pending.length > 0) started += (await startTemplateDownloads(actor, template, pending)).length;
  }
  return started;
}
