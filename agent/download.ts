// downloadTemplate: the agent fetches the template's URL itself and streams it into primary storage
// through a host that mounts the pool (`cat > <destination>.part` over SSH), hashing on the way. Only a
// file whose checksum matches is renamed into place; a mismatch or a broken transfer leaves nothing.
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { CommandPayload, CommandResult } from '../shared/agent/protocol.ts';
import { CommandFailure } from './errors.ts';
import { formatChecksum, parseChecksum, type Checksum } from './parse.ts';
import { shq, who, type SshPool } from './ssh.ts';

type Payload = CommandPayload<'downloadTemplate'> & { host: { port: number } };

/**
 * Shell: qemu-img's consistency check of a qcow2 file (exit 3, leaked clusters only, is harmless), then
 * its header as JSON.
 */
const QCOW2_CHECK = (file: string) =>
  `LC_ALL=C qemu-img check -q -f qcow2 ${shq(file)} 2>&1; rc=$?; [ $rc -eq 0 ] || [ $rc -eq 3 ] || { echo "@@check $rc"; exit 0; }; LC_ALL=C qemu-img info -f qcow2 --output=json ${shq(file)} 2>&1`;

/** What makes a downloaded qcow2 unusable, in qemu-img's words; undefined when it is fine. */
export function qcow2Problem(r: { code: number | null; stdout: string; stderr: string }): string | undefined {
  const text = `${r.stdout}${r.stderr}`.trim();
  if (r.code !== 0 || /^@@check \d+$/m.test(text)) return text.replace(/^@@check \d+$/m, '').replace(/^qemu-img: /gm, '').split('\n').filter(Boolean).join('; ').slice(0, 500) || 'qemu-img check failed';
  let info: { format?: string; 'backing-filename'?: string };
  try {
    info = JSON.parse(text.slice(text.indexOf('{')));
  } catch {
    return `qemu-img info said: ${text.slice(0, 300)}`;
  }
  // A backing file would make every VM read a file of the host's choosing (or fail to start).
  if (info['backing-filename']) return `it has a backing file (${info['backing-filename']}); a template must stand alone`;
  return undefined;
}

function failed(message: string) {
  return new CommandFailure('DownloadFailed', message);
}

export async function downloadTemplate(pool: SshPool, payload: Payload, signal?: AbortSignal): Promise<CommandResult<'downloadTemplate'>> {
  const { host, url, destination, templateId } = payload;
  let expected: Checksum | undefined;
  if (payload.checksum) {
    try {
      expected = parseChecksum(payload.checksum);
    } catch (err) {
      throw new CommandFailure('InvalidChecksum', `The checksum of template ${templateId} is unusable: ${(err as Error).message}`);
    }
  }
  let source: URL;
  try {
    source = new URL(url);
  } catch {
    throw failed(`The URL of template ${templateId} is not a URL: ${url}`);
  }
  if (source.protocol !== 'http:' && source.protocol !== 'https:') throw failed(`Cannot download ${url}: only http and https URLs are supported`);
  if (!posix.isAbsolute(destination) || /[\n\0]/.test(destination) || destination.endsWith('/')) {
    throw failed(`The destination of template ${templateId} is not an absolute file path: ${destination}`);
  }

  let response: Response;
  try {
    response = await fetch(source, { signal, redirect: 'follow' });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw failed(`Cannot download ${url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`);
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel().catch(() => {});
    throw failed(`Cannot download ${url}: HTTP ${response.status} ${response.statusText}`.trim());
  }

  const algorithm = expected?.algorithm ?? 'sha256';
  const hash = createHash(algorithm);
  let size = 0;
  const part = `${destination}.part`;
  const conn = await pool.get(host);
  const { stdin, done } = await conn.execWritable(`mkdir -p ${shq(posix.dirname(destination))} && cat > ${shq(part)}`);
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      size += chunk.length;
      callback(null, chunk);
    },
  });
  const discard = () => conn.exec(`rm -f ${shq(part)}`, { timeoutMs: 30_000 }).catch(() => {});
  try {
    await pipeline(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), counter, stdin, { signal });
  } catch (err) {
    stdin.destroy();
    const r = await done.catch(() => undefined);
    await discard();
    if (r && r.code !== 0 && r.stderr.trim()) throw failed(`Writing ${part} on ${who(host)} failed: ${r.stderr.trim().slice(0, 500)}`);
    throw failed(`Downloading ${url} to ${who(host)}:${destination} broke off after ${size} bytes: ${(err as Error).message}`);
  }
  const r = await done;
  if (r.code !== 0) {
    await discard();
    throw failed(`Writing ${part} on ${who(host)} failed (exit ${r.code ?? r.signal}): ${r.stderr.trim().slice(0, 500)}`);
  }
  const actual: Checksum = { algorithm, hex: hash.digest('hex') };
  if (expected && expected.hex !== actual.hex) {
    await discard();
    throw new CommandFailure(
      'ChecksumMismatch',
      `The checksum of template ${templateId} downloaded from ${url} does not match: expected ${formatChecksum(expected)}, got ${formatChecksum(actual)}; the download was discarded`,
    );
  }
  if (payload.format === 'QCOW2') {
    const problem = qcow2Problem(await conn.exec(QCOW2_CHECK(part), { timeoutMs: 300_000 }));
    if (problem) {
      await discard();
      throw new CommandFailure('InvalidTemplateFormat', `Template ${templateId} downloaded from ${url} is not a usable QCOW2 image: ${problem}; the download was discarded`);
    }
  }
  const mv = await conn.exec(`mv -f ${shq(part)} ${shq(destination)}`, { timeoutMs: 60_000 });
  if (mv.code !== 0) {
    await discard();
    throw failed(`Moving ${part} to ${destination} on ${who(host)} failed: ${mv.stderr.trim().slice(0, 500)}`);
  }
  return { path: destination, size, checksum: formatChecksum(actual) };
}
