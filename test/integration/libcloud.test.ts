// libcloud's CloudStack driver (Debian's python3-libcloud, a real client, unchanged) against the local
// runtime: locations, sizes, images, nodes, key pairs. Skipped where python3-libcloud is absent.
// The lifecycle of nodes on a lab host (create, reboot, stop, start, destroy) is in test/e2e/clients-lab.test.ts.
import { execFileSync, spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiClient } from '../support/client.ts';
import { startRuntime, type RunningRuntime } from '../support/runtime.ts';
import { ok, unique } from './identity-fixtures.ts';

const PYTHON = '/usr/bin/python3';
const available = spawnSync(PYTHON, ['-c', 'import libcloud.compute.drivers.cloudstack'], { stdio: 'ignore' }).status === 0;
const FLOW = resolve(import.meta.dirname, '../clients/libcloud-flow.py');
const PUBLIC_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDzsqZ0t3TvqnVx8iXrmXVwXP1wDZ5f0kXo2vS4P9Jr3 libcloud@test';

describe.skipIf(!available)("libcloud's CloudStack driver", () => {
  let runtime: RunningRuntime;
  let admin: ApiClient;
  let zoneName: string;

  beforeAll(async () => {
    runtime = await startRuntime();
    admin = new ApiClient(runtime.apiUrl, runtime.credentials);
    zoneName = unique('lczone');
    const zone = ok(await admin.call('createZone', { name: zoneName, networktype: 'Advanced', dns1: '192.0.2.53', internaldns1: '192.0.2.53' }), 'createZone').zone;
    ok(await admin.call('updateZone', { id: zone.id, allocationstate: 'Enabled' }), 'updateZone');
    // libcloud's list_sizes reads `serviceoffering` without a default: it needs one to exist.
    ok(await admin.call('createServiceOffering', { name: unique('lcsize'), displaytext: 'Small', cpunumber: 1, cpuspeed: 1000, memory: 512 }), 'createServiceOffering');
  });
  afterAll(async () => {
    await runtime?.stop();
  });

  it('lists locations, sizes, images and nodes, and imports, lists and deletes a key pair', () => {
    const keypair = unique('lckey');
    const out = execFileSync(PYTHON, [FLOW], {
      env: { ...process.env, MOLD_API_URL: runtime.apiUrl, MOLD_APIKEY: runtime.credentials.apikey, MOLD_SECRETKEY: runtime.credentials.secretkey, MOLD_KEYPAIR: keypair, MOLD_PUBLIC_KEY: PUBLIC_KEY },
      encoding: 'utf8',
    });
    const seen = JSON.parse(out);
    expect(seen.locations).toContain(zoneName);
    expect(seen.sizes.length).toBeGreaterThan(0);
    expect(seen.nodes).toEqual([]);
    expect(seen.keypair).toBe(keypair);
    expect(seen.keypairs).toContain(keypair);
    expect(seen.missingNode).not.toBeNull();
  });
});
