// The lab: N KVM hosts on this one Linux machine (root, Debian 12), for tests and for trying Mold
// without hardware. Each host is a network namespace (a veth on the bridge moldlab0, its own address)
// plus a mount and UTS namespace (its own hostname, a tmpfs on /run, its own /etc/libvirt,
// /var/lib/libvirt, /var/log/libvirt, /var/cache/libvirt, /root/.ssh, /etc/shadow and /etc/hosts),
// running sshd, virtlogd and libvirtd. Guests run under qemu's software emulation (domain type qemu).
// Every host sees the same <dir>/primary at the same path: SharedMountPoint primary storage.
// Addresses are 10.77.<slot>.0/24, which exists only inside this machine; nothing is forwarded out.
import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chmod, copyFile, mkdir, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { sleep, until } from '../support/wait.ts';

/**
 * The names of lab `id`: several labs can run side by side (one per test file), each with its own
 * bridge, subnet 10.77.<slot>.0/24, namespaces and state directory. Lab 0 is the one `npm run lab` runs.
 * The slot is the id plus MOLD_LAB_BASE (default 0), so that two checkouts can run their suites at once.
 */
export function labNames(id: number) {
  const slot = id + Number(process.env.MOLD_LAB_BASE ?? 0);
  if (!Number.isInteger(slot) || slot < 0 || slot > 254) throw new Error(`lab: ids plus MOLD_LAB_BASE are 0..254, not ${slot}`);
  /** Address `n` of the lab's subnet. */
  const address = (n: number) => `10.77.${slot}.${n}`;
  return {
    id,
    dir: slot === 0 ? (process.env.MOLD_LAB_DIR ?? '/tmp/moldlab') : `/tmp/moldlab${slot}`,
    bridge: `moldlab${slot}`,
    gateway: address(1),
    netnsPrefix: slot === 0 ? 'moldlab-h' : `moldlab${slot}-h`,
    vethPrefix: slot === 0 ? 'mlh' : `ml${slot}h`, // root-namespace end of host i's veth
    address,
    hostAddress: (i: number) => address(10 + i),
    /** Host i's BMC, on the lab network (this machine's side, where the agent runs). */
    bmcAddress: (i: number) => address(100 + i),
  };
}
const MAX_HOSTS = 90; // host addresses .11-.100; BMCs from .101
/** Runs as ipmi_sim's chassis_control: a BMC's power actions on its host. */
const BMC_SCRIPT = join(import.meta.dirname, 'bmc.sh');
/** A host's Redfish BMC (started on demand by startRedfish; its power actions run BMC_SCRIPT too). */
const REDFISH_BMC = join(import.meta.dirname, 'redfish-bmc.ts');
/** The port the lab's Redfish BMCs listen on (HTTPS). */
export const REDFISH_PORT = 443;

function readdirSyncSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
const OWNER_FILE = 'owner.json';

/** The ids of the labs whose state directory says test run `run` brought them up. */
export async function labsOfRun(run: string): Promise<number[]> {
  const ids: number[] = [];
  for (const entry of await readdir('/tmp').catch(() => [] as string[])) {
    if (!entry.startsWith('moldlab')) continue;
    const owner = await readFile(join('/tmp', entry, OWNER_FILE), 'utf8').then((text) => JSON.parse(text) as { id: number; run?: string }).catch(() => undefined);
    if (owner?.run === run) ids.push(owner.id);
  }
  return ids;
}
// libvirt's qemu capabilities, probed once per machine (libvirt re-probes if qemu or libvirt change).
const CAPS_CACHE = process.env.MOLD_LAB_CACHE ?? '/var/cache/moldlab/qemu-capabilities';

/** The bridge on each host's uplink (eth0), as cloudbr0 on a CloudStack KVM host. */
export const UPLINK_BRIDGE = 'cloudbr0';

/** The Debian packages the lab needs (also installed by .ci/run). */
export const PACKAGES = [
  'libvirt-daemon',
  'libvirt-daemon-driver-qemu',
  'libvirt-clients',
  'qemu-system-x86',
  'qemu-utils',
  'openssh-server',
  'iproute2',
  'openssl', // openssl passwd: the lab's root password hash
  'genisoimage', // the agent writes config drives with it (isoinfo reads them back in tests)
  // The guest template (test/lab/guest/build.sh): what goes into it and what builds it.
  'busybox-static',
  'dropbear-bin',
  'jq',
  'syslinux',
  'syslinux-common',
  'mtools',
  'dosfstools',
  'cpio',
  // Each host's BMC (OpenIPMI's ipmi_sim, test/lab/bmc.sh) and the agent's driver for it.
  'openipmi',
  'ipmitool',
];

/**
 * The lab's guest template, a small bootable Linux qcow2 that reads Mold's config drive (see
 * test/lab/guest/build.sh): built on first use, then from the cache (/var/cache/moldlab/guest).
 */
export async function guestImage(): Promise<string> {
  const script = join(import.meta.dirname, 'guest', 'build.sh');
  const { stdout } = await run('bash', [script]);
  return stdout.trim().split('\n').pop()!;
}

export interface LabHost {
  index: number;
  name: string; // hostname and network namespace name
  address: string;
  hostUuid: string;
  /** Its BMC (ipmi_sim, IPMI 2.0 over LAN): power actions act on the host (test/lab/bmc.sh). */
  bmc: { address: string; port: number; username: string };
}

/** The BMC user of every lab host. */
export const BMC_USER = 'admin';

export interface Lab {
  dir: string;
  user: 'root';
  password: string;
  passwordFile: string;
  privateKeyFile: string; // an ed25519 key every host accepts for root
  bmcPassword: string; // the BMC user's password, the same on every host's BMC
  primaryDir: string; // the same path on every host
  gateway: string; // this machine's own address on the lab bridge
  hosts: LabHost[];
}

export interface HostStatus extends LabHost {
  netns: boolean;
  sshd: boolean;
  libvirtd: boolean;
  virtlogd: boolean;
  bmcd: boolean;
}

async function run(cmd: string, args: string[], opts: { input?: string; allowFail?: boolean; env?: Record<string, string> } = {}) {
  return await new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], ...(opts.env && { env: { ...process.env, ...opts.env } }) });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      const result = { code: code ?? -1, stdout, stderr };
      if (code !== 0 && !opts.allowFail) {
        reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.trim() || stdout.trim()}`));
      } else resolve(result);
    });
    if (opts.input !== undefined) {
      child.stdin!.on('error', () => {});
      child.stdin!.end(opts.input);
    }
  });
}

/** A process that exists and is not a zombie (this machine's PID 1 reaps orphans only lazily). */
export function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

async function readPid(file: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(file, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Lab `id`'s operations (see labNames). */
export function labAt(id: number) {
  const { dir: LAB_DIR, bridge: BRIDGE, gateway: GATEWAY, netnsPrefix: NETNS_PREFIX, vethPrefix: VETH_PREFIX, hostAddress, bmcAddress } = labNames(id);

  /**
   * The lab's BMC processes (ipmi_sim and the Redfish emulators run in this machine's namespace, not
   * the host's: a host that loses power keeps its BMC): any started on the lab's configuration (also
   * one a crash left behind).
   */
  function bmcPids(): number[] {
    const pids = new Set<number>();
    for (const entry of readdirSyncSafe('/proc')) {
      const pid = Number(entry);
      if (!Number.isInteger(pid)) continue;
      try {
        const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
        const bmc = cmdline[0]?.endsWith('ipmi_sim') || cmdline[1] === REDFISH_BMC;
        if (bmc && cmdline.some((arg) => arg.startsWith(`${LAB_DIR}/`)) && alive(pid)) pids.add(pid);
      } catch {
        // gone meanwhile
      }
    }
    return [...pids];
  }

  /** Stops host i's BMC (all of them without i): with the host's power gone too, a total power loss. */
  async function stopBmc(i?: number): Promise<void> {
    const prefix = i === undefined ? `${LAB_DIR}/` : `${join(hostDir(i), 'bmc')}/`;
    const mine = bmcPids().filter((pid) => readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').some((arg) => arg.startsWith(prefix)));
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      for (const pid of mine.filter(alive)) {
        try {
          process.kill(pid, signal);
        } catch {}
      }
      for (let t = 0; t < 20 && mine.some(alive); t++) await sleep(50);
    }
  }

  /** Starts host i's BMC on its address, port 623 (ipmi_sim, IPMI 2.0; test/lab/bmc.sh is its chassis). */
  async function startBmc(i: number, password: string): Promise<void> {
    const dir = join(hostDir(i), 'bmc');
    await mkdir(join(dir, 'state'), { recursive: true });
    const ns = `${NETNS_PREFIX}${i}`;
    const veth = `${VETH_PREFIX}${i}`;
    const auths = 'none md2 md5 straight';
    await writeFile(
      join(dir, 'lan.conf'),
      [
        `name "${ns}-bmc"`,
        'set_working_mc 0x20',
        '  startlan 1',
        `    addr ${bmcAddress(i)} 623`,
        '    priv_limit admin',
        ...['callback', 'user', 'operator', 'admin'].map((p) => `    allowed_auths_${p} ${auths}`),
        `    guid ${randomBytes(16).toString('hex')}`,
        '  endlan',
        `  chassis_control "${BMC_SCRIPT} ${hostDir(i)} ${ns} ${veth}"`,
        `  user 2 true "${BMC_USER}" "${password}" admin 10 ${auths}`,
        '',
      ].join('\n'),
      { mode: 0o600 },
    );
    await writeFile(join(dir, 'cmd.emu'), ['mc_setbmc 0x20', 'mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr', 'mc_enable 0x20', ''].join('\n'));
    const log = await open(join(dir, 'bmc.log'), 'a');
    const child = spawn('ipmi_sim', ['-c', join(dir, 'lan.conf'), '-f', join(dir, 'cmd.emu'), '-s', join(dir, 'state'), '-n'], {
      detached: true,
      stdio: ['ignore', log.fd, log.fd],
    });
    child.unref();
    await log.close();
    await writeFile(join(dir, 'bmc.pid'), `${child.pid}\n`);
    await waitFor(`the BMC of ${ns}`, 15_000, async () => {
      const r = await run('ipmitool', ['-I', 'lanplus', '-C', '3', '-N', '1', '-R', '1', '-H', bmcAddress(i), '-U', BMC_USER, '-E', 'chassis', 'power', 'status'], { allowFail: true, env: { IPMI_PASSWORD: password } });
      return r.code === 0;
    }, async () => (await readFile(join(dir, 'bmc.log'), 'utf8').catch(() => '')).slice(-2000));
  }

  /**
   * Starts host i's Redfish BMC (test/lab/redfish-bmc.ts) beside its IPMI one: HTTPS on the BMC address,
   * port REDFISH_PORT, a self-signed certificate made here by openssl for that address (caFile: trust
   * it, e.g. in the agent's NODE_EXTRA_CA_CERTS), user BMC_USER with `password`. Its power actions run
   * bmc.sh as ipmi_sim's do. Stopped with the other BMCs (stopBmc, powerLoss, down).
   */
  async function startRedfish(i: number, password: string): Promise<{ address: string; port: number; username: string; caFile: string }> {
    const dir = join(hostDir(i), 'bmc', 'redfish');
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const ns = `${NETNS_PREFIX}${i}`;
    const certFile = join(dir, 'cert.pem');
    if (!existsSync(certFile)) {
      await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '7', '-subj', `/CN=${ns}-bmc`, '-addext', `subjectAltName=IP:${bmcAddress(i)}`, '-keyout', join(dir, 'key.pem'), '-out', certFile]);
    }
    await writeFile(join(dir, 'user'), BMC_USER + '\n');
    await writeFile(join(dir, 'password'), password + '\n', { mode: 0o600 });
    const log = await open(join(dir, 'redfish.log'), 'a');
    const child = spawn(process.execPath, [REDFISH_BMC, dir, bmcAddress(i), String(REDFISH_PORT), hostDir(i), ns, `${VETH_PREFIX}${i}`], { detached: true, stdio: ['ignore', log.fd, log.fd] });
    child.unref();
    await log.close();
    await waitFor(`the Redfish BMC of ${ns}`, 15_000, async () => (await readFile(join(dir, 'redfish.log'), 'utf8').catch(() => '')).includes(`"listening":"${bmcAddress(i)}:${REDFISH_PORT}"`), async () => (await readFile(join(dir, 'redfish.log'), 'utf8').catch(() => '')).slice(-2000));
    return { address: bmcAddress(i), port: REDFISH_PORT, username: BMC_USER, caFile: certFile };
  }

  /** The lab's network namespaces that exist now (also those left by a crash). */
  async function labNamespaces(): Promise<string[]> {
    const { stdout } = await run('ip', ['netns', 'list'], { allowFail: true });
    return stdout
      .split('\n')
      .map((l) => l.split(' ')[0])
      .filter((n) => new RegExp(`^${NETNS_PREFIX}\\d+$`).test(n));
  }

  /** Mount points in this (root) mount namespace that belong to the lab. */
  async function labMounts(): Promise<string[]> {
    const info = await readFile('/proc/self/mountinfo', 'utf8');
    return info
      .split('\n')
      .map((l) => l.split(' ')[4])
      .filter((p): p is string => !!p && (p.startsWith(LAB_DIR + '/') || p === LAB_DIR || p.startsWith(`/run/netns/${NETNS_PREFIX}`)));
  }

  /** PIDs of every process inside any of the lab's network namespaces. */
  async function labPids(): Promise<number[]> {
    const pids: number[] = [];
    for (const ns of await labNamespaces()) {
      const { stdout } = await run('ip', ['netns', 'pids', ns], { allowFail: true });
      for (const p of stdout.split(/\s+/)) if (p && alive(Number(p))) pids.push(Number(p));
    }
    return pids;
  }

  /** The lab's links in the root namespace (the bridge and the veths' root ends). */
  async function labLinks(): Promise<string[]> {
    const { stdout } = await run('ip', ['-o', 'link', 'show']);
    return stdout
      .split('\n')
      .map((l) => l.split(':')[1]?.trim().split('@')[0])
      .filter((n): n is string => !!n && (n === BRIDGE || new RegExp(`^${VETH_PREFIX}\\d+$`).test(n)));
  }

  async function labNetns(): Promise<string[]> {
    return await labNamespaces();
  }

  /** Tear the lab down: kill every process in its namespaces, delete namespaces, links, mounts, state. */
  async function down(): Promise<void> {
    await stopBmc();
    // Everything else the lab runs (sshd, virtlogd, libvirtd, qemu, ssh sessions) lives in its netns.
    let pids = await labPids();
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {}
    }
    for (let t = 0; t < 30 && pids.some(alive); t++) await sleep(100);
    for (let round = 0; round < 50; round++) {
      pids = (await labPids()).filter(alive);
      if (pids.length === 0) break;
      for (const pid of pids) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
      await sleep(100);
    }
    for (const ns of await labNamespaces()) await run('ip', ['netns', 'delete', ns], { allowFail: true });
    for (const link of await labLinks()) await run('ip', ['link', 'delete', link], { allowFail: true });
    for (const m of (await labMounts()).reverse()) await run('umount', ['-l', m], { allowFail: true });
    // `ip netns add` makes /run/netns a mount point of its own; drop it when nothing else uses it.
    if (existsSync('/run/netns')) {
      const { stdout } = await run('ls', ['-A', '/run/netns'], { allowFail: true });
      if (stdout.trim() === '') {
        await run('umount', ['/run/netns'], { allowFail: true });
        await rm('/run/netns', { recursive: true, force: true }).catch(() => {});
      }
    }
    const left = await labMounts();
    if (left.length) throw new Error(`lab mounts remain: ${left.join(', ')}`);
    if (!/^\/.+\/./.test(LAB_DIR)) throw new Error(`lab: refusing to delete state dir ${LAB_DIR}`);
    await rm(LAB_DIR, { recursive: true, force: true });
  }

  async function ensureUsers() {
    // What libvirt-daemon-system would create: Debian's libvirtd resolves its built-in default user and
    // group (libvirt-qemu) at start-up even when qemu.conf names others, and fails if they are missing.
    for (const g of ['kvm', 'libvirt', 'libvirt-qemu']) {
      // allowFail: another lab starting at the same moment may create it first.
    if ((await run('getent', ['group', g], { allowFail: true })).code !== 0) await run('groupadd', ['--system', g], { allowFail: true });
    }
    if ((await run('getent', ['passwd', 'libvirt-qemu'], { allowFail: true })).code !== 0) {
      await run('useradd', [
        '--system',
        '--gid',
        'kvm',
        '--groups',
        'libvirt',
        '--home-dir',
        '/var/lib/libvirt',
        '--no-create-home',
        '--shell',
        '/usr/sbin/nologin',
        'libvirt-qemu',
      ], { allowFail: true });
    }
  }

  function hostDir(i: number) {
    return join(LAB_DIR, `h${i}`);
  }

  /** Waits for `check` (a check that throws is not yet true); a time-out adds the daemons' log. */
  async function waitFor(what: string, quietMs: number, check: () => Promise<boolean>, detail: () => Promise<string>) {
    try {
      await until(what, () => check().catch(() => false), (holds) => holds, { within: quietMs });
    } catch (error) {
      throw new Error(`lab: ${(error as Error).message}\n${await detail()}`);
    }
  }

  function tcpOpen(host: string, port: number): Promise<boolean> {
    return new Promise((resolve) => {
      const s = connect({ host, port, timeout: 1000 });
      s.on('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
      s.on('timeout', () => {
        s.destroy();
        resolve(false);
      });
    });
  }

  /** Run a command inside lab host i (its network, mount and UTS namespaces), as root. */
  async function hostExec(i: number, argv: string[], opts: { allowFail?: boolean } = {}) {
    const pid = await readPid(join(hostDir(i), 'libvirtd.pid'));
    if (!pid || !alive(pid)) throw new Error(`lab host ${i} is not running`);
    return await run('nsenter', ['-t', String(pid), '-n', '-m', '-u', '--', ...argv], opts);
  }

  /** Bring up n hosts, first tearing down whatever a previous lab (or crash) left. */
  async function up(n: number): Promise<Lab> {
    if (!Number.isInteger(n) || n < 1 || n > MAX_HOSTS) throw new Error(`lab: 1..${MAX_HOSTS} hosts, not ${n}`);
    if (process.getuid?.() !== 0) throw new Error('lab: must run as root');
    await down();
    await ensureUsers();

    await mkdir(LAB_DIR, { recursive: true, mode: 0o755 });
    await chmod(LAB_DIR, 0o755); // qemu (libvirt-qemu) must reach primary/
    // Whose lab this is: a test run's global teardown removes the labs its files left behind.
    await writeFile(join(LAB_DIR, OWNER_FILE), `${JSON.stringify({ id, run: process.env.MOLD_TEST_RUN })}\n`);
    const primaryDir = join(LAB_DIR, 'primary');
    await mkdir(primaryDir, { mode: 0o755 });

    // Credentials: a generated root password (0600 file) and an ed25519 key, both per lab.
    const password = randomBytes(18).toString('base64url');
    const passwordFile = join(LAB_DIR, 'password');
    await writeFile(passwordFile, password + '\n', { mode: 0o600 });
    const privateKeyFile = join(LAB_DIR, 'id_ed25519');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'moldlab', '-f', privateKeyFile]);
    const hostKey = join(LAB_DIR, 'ssh_host_ed25519_key');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'moldlab-host', '-f', hostKey]);
    const publicKey = await readFile(privateKeyFile + '.pub', 'utf8');

    // /etc/shadow as the hosts see it: root's password is the lab's (the machine's own is untouched).
    const hash = (await run('openssl', ['passwd', '-6', '-stdin'], { input: password })).stdout.trim();
    const shadow = (await readFile('/etc/shadow', 'utf8'))
      .split('\n')
      .map((l) => {
        const f = l.split(':');
        if (f[0] !== 'root') return l;
        f[1] = hash;
        return f.join(':');
      })
      .join('\n');
    const shadowFile = join(LAB_DIR, 'shadow');
    await writeFile(shadowFile, shadow, { mode: 0o600 });

    const hosts: LabHost[] = [];
    for (let i = 1; i <= n; i++) {
      hosts.push({ index: i, name: `${NETNS_PREFIX}${i}`, address: hostAddress(i), hostUuid: randomUUID(), bmc: { address: bmcAddress(i), port: 623, username: BMC_USER } });
    }
    const hostsFile = join(LAB_DIR, 'hosts');
    await writeFile(
      hostsFile,
      ['127.0.0.1 localhost', `${GATEWAY} moldlab-gateway`, ...hosts.map((h) => `${h.address} ${h.name}`), ''].join('\n'),
    );
    const emptyFile = join(LAB_DIR, 'empty');
  await writeFile(emptyFile, '');
  const sshdConfig = join(LAB_DIR, 'sshd_config');
    await writeFile(
      sshdConfig,
      [
        'Port 22',
        `HostKey ${hostKey}`,
        'PermitRootLogin yes',
        'PasswordAuthentication yes',
        'PubkeyAuthentication yes',
        'KbdInteractiveAuthentication no',
        'AuthorizedKeysFile .ssh/authorized_keys',
        'UsePAM no',
        'PrintMotd no',
        'UseDNS no',
        'MaxStartups 100',
        'MaxSessions 100',
        'AcceptEnv LANG LC_*',
        'Subsystem sftp /usr/lib/openssh/sftp-server',
        '',
      ].join('\n'),
    );

    // Mount points the hosts bind their own directories onto (empty in the root namespace).
    for (const d of ['/var/lib/libvirt', '/var/log/libvirt', '/var/cache/libvirt', '/etc/libvirt', '/root/.ssh']) {
      await mkdir(d, { recursive: true });
    }

    await run('ip', ['link', 'add', BRIDGE, 'type', 'bridge']);
    await run('ip', ['addr', 'add', `${GATEWAY}/24`, 'dev', BRIDGE]);
    // The BMCs' addresses: this machine's side of the lab network, where the agent reaches them.
    for (const h of hosts) await run('ip', ['addr', 'add', `${h.bmc.address}/24`, 'dev', BRIDGE]);
    await run('ip', ['link', 'set', BRIDGE, 'up']);

    const starts: Array<() => Promise<void>> = [];
    for (const h of hosts) {
      const ns = h.name;
      const veth = `${VETH_PREFIX}${h.index}`;
      await run('ip', ['netns', 'add', ns]);
      await run('ip', ['link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      await run('ip', ['link', 'set', veth, 'master', BRIDGE, 'up']);
      // As a CloudStack KVM host is set up: the uplink (eth0) on the bridge cloudbr0, which holds the
      // host's address, so guests of untagged networks sit on the lab network beside the hosts.
      await run('ip', ['-n', ns, 'link', 'add', UPLINK_BRIDGE, 'type', 'bridge', 'forward_delay', '0']);
      await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'master', UPLINK_BRIDGE]);
      await run('ip', ['-n', ns, 'addr', 'add', `${h.address}/24`, 'dev', UPLINK_BRIDGE]);
      for (const link of ['lo', 'eth0', UPLINK_BRIDGE]) await run('ip', ['-n', ns, 'link', 'set', link, 'up']);
      await run('ip', ['-n', ns, 'route', 'add', 'default', 'via', GATEWAY]);

      const hd = hostDir(h.index);
      const etc = join(hd, 'etc-libvirt');
      for (const d of [join(etc, 'qemu'), join(hd, 'var-lib-libvirt'), join(hd, 'var-log-libvirt'), join(hd, 'var-cache-libvirt')]) {
        await mkdir(d, { recursive: true });
      }
      for (const f of ['libvirt.conf', 'libvirt-admin.conf']) {
        if (existsSync(`/etc/libvirt/${f}`)) await copyFile(`/etc/libvirt/${f}`, join(etc, f));
      }
      await writeFile(
        join(etc, 'libvirtd.conf'),
        `host_uuid = "${h.hostUuid}"\nunix_sock_group = "root"\nunix_sock_rw_perms = "0770"\nauth_unix_rw = "none"\n`,
      );
      await writeFile(
        join(etc, 'qemu.conf'),
        [
          // Guests run as root: this machine's /dev/kvm is root-only (0600), and with libvirt-qemu the
          // cached capabilities never validate ("KVM was enabled when probing ... not available now"),
          // so libvirtd re-probes qemu (~40 s) on every define.
          'user = "root"',
          'group = "root"',
          'security_driver = "none"',
          'stdio_handler = "logd"',
          // Migration between lab hosts: qemu listens on the host's own address.
          `migration_address = "${h.address}"`,
          '',
        ].join('\n'),
      );
      await writeFile(join(etc, 'virtlogd.conf'), '');
      const rootSsh = join(hd, 'root-ssh');
      await mkdir(rootSsh, { mode: 0o700 });
      await writeFile(join(rootSsh, 'authorized_keys'), publicKey, { mode: 0o600 });
      await copyFile(privateKeyFile, join(rootSsh, 'id_ed25519'));
      await chmod(join(rootSsh, 'id_ed25519'), 0o600);
      await copyFile(privateKeyFile + '.pub', join(rootSsh, 'id_ed25519.pub'));
      await writeFile(
        join(rootSsh, 'config'),
        'Host 10.77.*.* moldlab*\n  StrictHostKeyChecking no\n  UserKnownHostsFile /dev/null\n  LogLevel ERROR\n',
        { mode: 0o600 },
      );

      const log = join(hd, 'daemons.log');
      const script = [
        'set -e',
        `hostname ${h.name}`,
        'mount -t tmpfs -o mode=0755 tmpfs /run',
        'mkdir -p /run/sshd /run/libvirt /run/lock && chmod 0755 /run/sshd',
        // Where a host's libvirtd keeps its pid (the agent reloads it there after installing its hook).
        `ln -s ${join(hd, 'libvirtd.pid')} /run/libvirtd.pid`,
        `mount --bind ${etc} /etc/libvirt`,
        `mount --bind ${join(hd, 'var-lib-libvirt')} /var/lib/libvirt`,
        `mount --bind ${join(hd, 'var-log-libvirt')} /var/log/libvirt`,
        `mount --bind ${join(hd, 'var-cache-libvirt')} /var/cache/libvirt`,
        `mount --bind ${rootSsh} /root/.ssh`,
        `mount --bind ${shadowFile} /etc/shadow`,
        `mount --bind ${hostsFile} /etc/hosts`,
        // The hosts share this machine's /root; its shell start-up files (pyenv and the like) would
        // run on every SSH command, adding ~400 ms to each. A host has a plain root shell.
        ...['.bashrc', '.profile', '.bash_profile'].map((f) => `[ ! -e /root/${f} ] || mount --bind ${emptyFile} /root/${f}`),
        `exec >>${log} 2>&1 </dev/null`,
        `virtlogd -d -f /etc/libvirt/virtlogd.conf -p ${join(hd, 'virtlogd.pid')}`,
        `libvirtd -d -f /etc/libvirt/libvirtd.conf -p ${join(hd, 'libvirtd.pid')}`,
        `/usr/sbin/sshd -f ${sshdConfig} -o ListenAddress=${h.address} -o PidFile=${join(hd, 'sshd.pid')} -E ${join(hd, 'sshd.log')}`,
      ].join('\n');
      starts.push(async () => {
        // Seed libvirt's qemu capabilities cache: probing each qemu binary takes ~20 s here.
        const caps = join(hd, 'var-cache-libvirt', 'qemu', 'capabilities');
        await mkdir(caps, { recursive: true });
        for (const f of await readdir(CAPS_CACHE).catch(() => [] as string[])) {
          if (f.endsWith('.xml')) await copyFile(join(CAPS_CACHE, f), join(caps, f));
        }
        // The host's boot, kept as a file: its BMC boots it again with it after a power-off.
        await writeFile(join(hd, 'boot.sh'), script + '\n');
        await writeFile(join(hd, 'power'), 'on\n');
        await run('ip', ['netns', 'exec', ns, 'unshare', '--mount', '--uts', '--propagation', 'private', 'sh', join(hd, 'boot.sh')]);
        const logTail = async () => (await readFile(log, 'utf8').catch(() => '')).slice(-2000);
        await waitFor(`libvirtd on ${h.name}`, 30_000, async () => {
          return (await hostExec(h.index, ['virsh', '-c', 'qemu:///system', 'uri'], { allowFail: true })).code === 0;
        }, logTail);
        await waitFor(`sshd on ${h.name}`, 15_000, () => tcpOpen(h.address, 22), logTail);
      });
    }

    const bmcPassword = randomBytes(6).toString('base64url');
    await writeFile(join(LAB_DIR, 'bmc-password'), bmcPassword + '\n', { mode: 0o600 });
    const lab: Lab = {
      dir: LAB_DIR,
      user: 'root',
      password,
      passwordFile,
      privateKeyFile,
      bmcPassword,
      primaryDir,
      gateway: GATEWAY,
      hosts,
    };
    await writeFile(join(LAB_DIR, 'lab.json'), JSON.stringify({ ...lab, password: undefined, bmcPassword: undefined }, null, 2) + '\n');

    // Host 1 first; if this machine has no capabilities cache yet, host 1 probes qemu once and the
    // other hosts (and later labs) start from its results.
    await starts[0]!();
    if ((await readdir(CAPS_CACHE).catch(() => [] as string[])).filter((f) => f.endsWith('.xml')).length === 0) {
      await hostExec(1, ['virsh', '-c', 'qemu:///system', 'capabilities']);
      await hostExec(1, ['virsh', '-c', 'qemu:///system', 'domcapabilities', '--virttype', 'qemu']);
      const probed = join(hostDir(1), 'var-cache-libvirt', 'qemu', 'capabilities');
      await mkdir(CAPS_CACHE, { recursive: true, mode: 0o700 });
      for (const f of await readdir(probed)) if (f.endsWith('.xml')) await copyFile(join(probed, f), join(CAPS_CACHE, f));
    }
    await Promise.all(starts.slice(1).map((start) => start()));
    for (const h of hosts) await startBmc(h.index, bmcPassword);

    return lab;
  }

  /** The lab as it stands: each recorded host with its namespace and daemons. */
  async function status(): Promise<{ lab?: Omit<Lab, 'password' | 'bmcPassword'>; hosts: HostStatus[] }> {
    let lab: Omit<Lab, 'password' | 'bmcPassword'> | undefined;
    try {
      lab = JSON.parse(await readFile(join(LAB_DIR, 'lab.json'), 'utf8'));
    } catch {
      return { hosts: [] };
    }
    const namespaces = new Set(await labNamespaces());
    const hosts: HostStatus[] = [];
    for (const h of lab!.hosts) {
      const hd = hostDir(h.index);
      const up = async (d: string) => {
        const pid = await readPid(join(hd, `${d}.pid`));
        return !!pid && alive(pid);
      };
      hosts.push({
        ...h,
        netns: namespaces.has(h.name),
        sshd: await up('sshd'),
        libvirtd: await up('libvirtd'),
        virtlogd: await up('virtlogd'),
        bmcd: bmcPids().some((pid) => readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(`${hd}/bmc/`)),
      });
    }
    return { lab, hosts };
  }

  /** Read the lab's password (for a lab brought up by another process, e.g. `npm run lab -- up 2`). */
  async function labPassword(): Promise<string> {
    return (await readFile(join(LAB_DIR, 'password'), 'utf8')).trim();
  }

  /**
   * Total power loss of host i: the host goes off as its BMC would switch it off, and its BMC goes
   * with it (no longer answers), as when a whole chassis or rack loses power.
   */
  async function powerLoss(i: number): Promise<void> {
    await stopBmc(i);
    await powerOff(i);
  }

  /** Host i loses power while its BMC stays up (a crashed or switched-off server): the BMC reads Off. */
  async function powerOff(i: number): Promise<void> {
    const ns = `${NETNS_PREFIX}${i}`;
    await run(BMC_SCRIPT, [hostDir(i), ns, `${VETH_PREFIX}${i}`, 'set', 'power', '0']);
    // The script cuts the link at once and kills the host's processes just after: wait for that.
    await waitFor(`${ns} to lose power`, 15_000, async () => (await run('ip', ['netns', 'pids', ns], { allowFail: true })).stdout.trim() === '', async () => '');
  }

  /**
   * Host i cut off from the network (its link down at this machine's end) while it runs on: the agent,
   * its peers and its guests' callers lose it; its BMC and its shared storage (a local folder) stay.
   */
  async function cutLink(i: number): Promise<void> {
    await run('ip', ['link', 'set', `${VETH_PREFIX}${i}`, 'down']);
  }

  /** Host i's link back (after cutLink). */
  async function mendLink(i: number): Promise<void> {
    await run('ip', ['link', 'set', `${VETH_PREFIX}${i}`, 'up']);
  }

  /** The BMC user's password of a lab brought up by another process. */
  async function bmcPassword(): Promise<string> {
    return (await readFile(join(LAB_DIR, 'bmc-password'), 'utf8')).trim();
  }

  return { names: labNames(id), up, down, status, hostExec, labPids, labLinks, labMounts, labNetns, labPassword, bmcPassword, bmcPids, stopBmc, startBmc, startRedfish, powerLoss, powerOff, cutLink, mendLink };
}

/** The default lab: MOLD_LAB_ID, else 0. */
const defaultLab = labAt(Number(process.env.MOLD_LAB_ID ?? 0));
export const LAB_DIR = defaultLab.names.dir;
export const { up, down, status, hostExec, labPids, labLinks, labMounts, labNetns, labPassword, bmcPassword } = defaultLab;
