// `npm run lab -- up N` | `npm run lab -- down` | `npm run lab -- status` | `npm run lab -- template`
import { statSync } from 'node:fs';
import { down, guestImage, PACKAGES, status, up } from './lab.ts';

const [command, arg] = process.argv.slice(2);
// MOLD_LAB_ID picks another lab than 0 (each has its own bridge, subnet and namespaces).

async function main() {
  switch (command) {
    case 'up': {
      const n = arg === undefined ? 2 : Number(arg);
      const started = Date.now();
      const lab = await up(n);
      console.log(`lab up: ${lab.hosts.length} host(s) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
      for (const h of lab.hosts) console.log(`  ${h.name}  ${h.address}  host uuid ${h.hostUuid}`);
      console.log(`  ssh root@<address>, password in ${lab.passwordFile}, or key ${lab.privateKeyFile}`);
      console.log(`  shared primary storage (SharedMountPoint): ${lab.primaryDir}`);
      console.log(`  this machine on the lab network: ${lab.gateway}`);
      return;
    }
    case 'down':
      await down();
      console.log('lab down');
      return;
    case 'status': {
      const s = await status();
      if (!s.lab) {
        console.log('lab is down');
        return;
      }
      for (const h of s.hosts) {
        const flags = (['netns', 'sshd', 'libvirtd', 'virtlogd', 'bmcd'] as const).map((k) => `${k}:${h[k] ? 'up' : 'DOWN'}`);
        console.log(`${h.name}  ${h.address}  ${flags.join(' ')}`);
      }
      console.log(`password file ${s.lab.passwordFile}, key ${s.lab.privateKeyFile}, primary ${s.lab.primaryDir}`);
      return;
    }
    case 'template': {
      // The bootable guest template (test/lab/guest/build.sh), built on first use, then cached.
      const image = await guestImage();
      console.log(`${image} (${(statSync(image).size / 2 ** 20).toFixed(1)} MiB)`);
      return;
    }
    default:
      console.error('usage: npm run lab -- up [N] | down | status | template');
      console.error(`needs root and the Debian packages: ${PACKAGES.join(' ')}`);
      process.exit(2);
  }
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
