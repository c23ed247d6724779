// The inventory export format (`npm run export` / `npm run import`, scripts/inventory.ts): JSON lines,
// one header, one line per item as DynamoDB's own export to S3 writes them (`{"Item": <DynamoDB JSON>}`,
// binary values in base64), and an end record with the item count and the SHA-256 of the item lines, so
// that a copy cut short or altered is refused before anything is written. Items are copied as stored:
// what is sealed (API secret keys, BMC and host passwords) stays sealed, and opens only where the same
// data key and agent CA are configured (docs/operations.md, "Backup and restore").
import { createHash } from 'node:crypto';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';

export const ARCHIVE_FORMAT = 'mold-inventory';
export const ARCHIVE_VERSION = 1;

export type Item = Record<string, AttributeValue>;

export interface ArchiveHeader {
  format: typeof ARCHIVE_FORMAT;
  version: number;
  /** When the export began (ISO 8601, UTC). */
  exportedAt: string;
  /** The table it was read from. */
  table: string;
}

/** Why an archive cannot be imported; nothing has been written when it is thrown. */
export class ArchiveRefused extends Error {}

/** DynamoDB JSON with binary values as base64 text, as AWS's table exports write it. */
function itemLine(item: Item): string {
  return JSON.stringify({ Item: item }, (_key, value) => (value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value));
}

/** Binary values back from base64, wherever they are nested. */
function revive(value: AttributeValue): AttributeValue {
  if (value.B !== undefined) return { B: Buffer.from(value.B as unknown as string, 'base64') };
  if (value.BS !== undefined) return { BS: (value.BS as unknown as string[]).map((b) => Buffer.from(b, 'base64')) };
  if (value.L !== undefined) return { L: value.L.map(revive) };
  if (value.M !== undefined) return { M: reviveItem(value.M) };
  return value;
}
const reviveItem = (item: Item): Item => Object.fromEntries(Object.entries(item).map(([name, value]) => [name, revive(value)]));

/** Writes an archive: `write` is called with each line (newline included), in order. */
export async function writeArchive(header: Omit<ArchiveHeader, 'format' | 'version'>, items: AsyncIterable<Item[]>, write: (line: string) => Promise<void> | void): Promise<number> {
  const digest = createHash('sha256');
  let count = 0;
  await write(`${JSON.stringify({ format: ARCHIVE_FORMAT, version: ARCHIVE_VERSION, ...header })}\n`);
  for await (const page of items) {
    for (const item of page) {
      const line = itemLine(item);
      digest.update(`${line}\n`);
      count++;
      await write(`${line}\n`);
    }
  }
  await write(`${JSON.stringify({ end: { items: count, sha256: digest.digest('hex') } })}\n`);
  return count;
}

/** Reads and checks a whole archive; refuses one of another format or version, cut short, or altered. */
export function readArchive(text: string): { header: ArchiveHeader; items: Item[] } {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const parse = (index: number): any => {
    try {
      return JSON.parse(lines[index]!);
    } catch {
      throw new ArchiveRefused(index === 0 ? `not a Mold inventory export: its first line is not a ${ARCHIVE_FORMAT} header` : `the export is corrupt: line ${index + 1} is not JSON`);
    }
  };
  const header = lines.length > 0 ? parse(0) : undefined;
  if (header?.format !== ARCHIVE_FORMAT) throw new ArchiveRefused(`not a Mold inventory export: its first line is not a ${ARCHIVE_FORMAT} header`);
  if (header.version !== ARCHIVE_VERSION) throw new ArchiveRefused(`this export is format version ${JSON.stringify(header.version)}; this Mold imports version ${ARCHIVE_VERSION} only`);
  const last = lines.length > 1 ? parse(lines.length - 1) : undefined;
  if (!last?.end) throw new ArchiveRefused(`the export is incomplete: it has no end record after its last line (${lines.length - 1} lines after the header), so it was cut short`);
  const digest = createHash('sha256');
  const items: Item[] = [];
  for (let index = 1; index < lines.length - 1; index++) {
    const record = parse(index);
    if (!record?.Item || typeof record.Item !== 'object') throw new ArchiveRefused(`the export is corrupt: line ${index + 1} is not an item`);
    digest.update(`${lines[index]}\n`);
    items.push(reviveItem(record.Item));
  }
  if (last.end.items !== items.length) throw new ArchiveRefused(`the export is corrupt: its end record counts ${last.end.items} items, it holds ${items.length}`);
  if (last.end.sha256 !== digest.digest('hex')) throw new ArchiveRefused('the export is corrupt: its items do not match the checksum of its end record (altered after the export)');
  for (const item of items) if (item.pk?.S === undefined || item.sk?.S === undefined) throw new ArchiveRefused('the export is corrupt: an item has no pk and sk');
  return { header: header as ArchiveHeader, items };
}
