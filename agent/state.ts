// The agent's state directory: its RSA key, certificate and Mold's CA certificate (the gateway identity),
// its SSH key for hosts, agent.json (who it is and where the control plane is), the journal of command
// results and the pinned host keys. Everything in it is private to root: the directory is 0700, every
// file 0600, and files are replaced atomically so a crash never leaves half a key.
import { readFileSync } from 'node:fs';
import { chmod, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { z } from 'zod';

export const DEFAULT_DIR = '/var/lib/mold-agent';

export function defaultDir(): string {
  return process.env.MOLD_AGENT_DIR || DEFAULT_DIR;
}

export const FILES = {
  agent: 'agent.json',
  key: 'agent-key.pem',
  certificate: 'agent-cert.pem',
  ca: 'ca-cert.pem',
  sshKey: 'ssh-key',
  sshPublicKey: 'ssh-key.pub',
  journal: 'journal.jsonl',
  knownHosts: 'known-hosts.json',
  migrationKey: 'migration-key',
} as const;

export const agentConfig = z.object({
  agentId: z.string(),
  zoneId: z.string(),
  /** The base URL given at enrolment (the API's, e.g. http://host:8080/client/api or its origin). */
  url: z.string(),
  queueUrl: z.string(),
  name: z.string().optional(),
  enrolled: z.string(),
});
export type AgentConfig = z.infer<typeof agentConfig>;

export interface AgentState {
  dir: string;
  config: AgentConfig;
  privateKeyPem: string;
  certificatePem: string;
  caCertificatePem: string;
  sshPrivateKey: string;
  /** authorized_keys form, commented `mold-agent-<agentId>`. */
  sshPublicKey: string;
  /**
   * The key the zone's hosts use to reach each other for live migration (qemu+ssh): its private half
   * is put on every host the agent adds, its public half in their authorized_keys, both removed when
   * the host is forgotten. Not the agent's own key: a host never holds a key to the other hosts' root
   * beyond what migration needs, and never the agent's.
   */
  migrationKey?: { privateKey: string; publicKey: string };
}

export async function ensureDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
}

/** Writes a 0600 file atomically (temporary file, flushed, renamed over the old one). */
export async function writePrivateFile(path: string, content: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.chmod(0o600);
    await fh.writeFile(content, 'utf8');
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

export function isEnrolled(dir: string): boolean {
  try {
    readFileSync(join(dir, FILES.agent));
    return true;
  } catch {
    return false;
  }
}

export async function loadState(dir: string): Promise<AgentState> {
  let raw: string;
  try {
    raw = await readFile(join(dir, FILES.agent), 'utf8');
  } catch {
    throw new Error(`This agent is not enrolled: no ${FILES.agent} in ${dir} (run \`mold-agent enrol --url <api> --token <token>\` first)`);
  }
  const config = agentConfig.parse(JSON.parse(raw));
  const read = (f: string) => readFile(join(dir, f), 'utf8');
  const [privateKeyPem, certificatePem, caCertificatePem, sshPrivateKey, sshPublicKey] = await Promise.all([
    read(FILES.key),
    read(FILES.certificate),
    read(FILES.ca),
    read(FILES.sshKey),
    read(FILES.sshPublicKey),
  ]);
  return { dir, config, privateKeyPem, certificatePem, caCertificatePem, sshPrivateKey, sshPublicKey: sshPublicKey.trim(), migrationKey: await migrationKey(dir, config.agentId) };
}

/**
 * An ed25519 key pair in OpenSSH form that ssh2 can read back. ssh2 writes about 1 in 250 of the
 * ed25519 keys it generates in a form its own parser rejects ("Malformed OpenSSH private key"; 13 of
 * 3000 on this machine): such a key made `mold-agent run` fail at start, so a key that does not parse
 * is made again.
 */
export function makeSshKeyPair(comment: string): { private: string; public: string } {
  for (;;) {
    const made = ssh2.utils.generateKeyPairSync('ed25519', { comment });
    if (!(ssh2.utils.parseKey(made.private) instanceof Error)) return made;
  }
}

/** The migration key (made on first use: agents enrolled before live migration have none). */
async function migrationKey(dir: string, agentId: string): Promise<NonNullable<AgentState['migrationKey']>> {
  const path = join(dir, FILES.migrationKey);
  let privateKey: string;
  try {
    privateKey = await readFile(path, 'utf8');
  } catch {
    const made = makeSshKeyPair(migrationKeyComment(agentId));
    await writePrivateFile(path, made.private);
    privateKey = made.private;
  }
  const parsed = ssh2.utils.parseKey(privateKey);
  if (parsed instanceof Error) throw new Error(`${path}: ${parsed.message}`);
  const key = Array.isArray(parsed) ? parsed[0]! : parsed;
  const publicKey = `${key.type} ${key.getPublicSSH().toString('base64')} ${migrationKeyComment(agentId)}`;
  return { privateKey, publicKey };
}

/** The comment that tags the migration key in a host's authorized_keys. */
export function migrationKeyComment(agentId: string): string {
  return `mold-migration-${agentId}`;
}

export async function saveState(state: AgentState): Promise<void> {
  await ensureDir(state.dir);
  const w = (f: string, c: string) => writePrivateFile(join(state.dir, f), c);
  await w(FILES.key, state.privateKeyPem);
  await w(FILES.certificate, state.certificatePem);
  await w(FILES.ca, state.caCertificatePem);
  await w(FILES.sshKey, state.sshPrivateKey);
  await w(FILES.sshPublicKey, `${state.sshPublicKey}\n`);
  // agent.json last: its presence is what marks the directory enrolled.
  await w(FILES.agent, `${JSON.stringify(state.config, null, 2)}\n`);
}

/** The comment that tags the agent's key in a host's authorized_keys. */
export function keyComment(agentId: string): string {
  return `mold-agent-${agentId}`;
}

/** `type base64 comment` with the comment replaced. */
export function withComment(publicKeyLine: string, comment: string): string {
  const [type, data] = publicKeyLine.trim().split(/\s+/);
  return `${type} ${data} ${comment}`;
}

export function agentVersion(): string {
  try {
    return JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}
