// The agent's record of command outcomes, keyed by commandId. SQS delivers at least once and Step
// Functions may hand the same command over again, so a command that already ran is answered from here
// and never run twice, across restarts. One JSON line per outcome, appended and flushed before the
// result goes to the gateway; old entries are dropped by rewriting the file when it grows.
// Outcomes hold no secrets: no payload is recorded, and no result carries a password.
import { appendFile, readFile } from 'node:fs/promises';
import { z } from 'zod';
import { commandFailure } from '../shared/agent/protocol.ts';
import { writePrivateFile } from './state.ts';

export const outcome = z.union([
  z.object({ ok: z.literal(true), result: z.unknown() }),
  z.object({ ok: z.literal(false), failure: commandFailure }),
]);
export type Outcome = z.infer<typeof outcome>;

export const journalEntry = z.object({
  commandId: z.string(),
  type: z.string(),
  /** ISO 8601, when the outcome was recorded. */
  at: z.string(),
  outcome,
});
export type JournalEntry = z.infer<typeof journalEntry>;

export interface JournalOptions {
  /** Entries older than this are dropped at compaction (Step Functions tasks last at most days). */
  retentionMs?: number;
  /** Compact when the file holds this many lines. */
  compactAt?: number;
  now?: () => number;
}

/** Parses journal lines; a torn last line (crash mid-append) or a corrupt one is skipped. */
export function parseJournal(text: string): JournalEntry[] {
  const entries: JournalEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    try {
      const parsed = journalEntry.safeParse(JSON.parse(line));
      if (parsed.success) entries.push(parsed.data);
    } catch {}
  }
  return entries;
}

export class Journal {
  readonly path: string;
  private readonly entries = new Map<string, JournalEntry>();
  private lines = 0;
  private readonly retentionMs: number;
  private readonly compactAt: number;
  private readonly now: () => number;
  // Appends are serialised so concurrent commands never interleave within a line.
  private tail: Promise<void> = Promise.resolve();

  constructor(path: string, options: JournalOptions = {}) {
    this.path = path;
    this.retentionMs = options.retentionMs ?? 14 * 24 * 3600_000;
    this.compactAt = options.compactAt ?? 20_000;
    this.now = options.now ?? Date.now;
  }

  static async open(path: string, options: JournalOptions = {}): Promise<Journal> {
    const journal = new Journal(path, options);
    let text = '';
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    for (const entry of parseJournal(text)) {
      journal.entries.set(entry.commandId, entry);
      journal.lines++;
    }
    return journal;
  }

  get size(): number {
    return this.entries.size;
  }

  get(commandId: string): JournalEntry | undefined {
    return this.entries.get(commandId);
  }

  /** Records an outcome durably (flushed) before it is reported. The first outcome of a command wins. */
  async record(commandId: string, type: string, result: Outcome): Promise<JournalEntry> {
    const existing = this.entries.get(commandId);
    if (existing) return existing;
    const entry: JournalEntry = { commandId, type, at: new Date(this.now()).toISOString(), outcome: result };
    this.entries.set(commandId, entry);
    const line = `${JSON.stringify(entry)}\n`;
    const write = this.tail.then(async () => {
      await appendFile(this.path, line, { mode: 0o600, flush: true });
      this.lines++;
      if (this.lines >= this.compactAt) await this.compact();
    });
    this.tail = write.catch(() => {});
    await write;
    return entry;
  }

  /** Drops expired entries (and superseded lines) by rewriting the file. */
  private async compact(): Promise<void> {
    const cutoff = this.now() - this.retentionMs;
    for (const [id, entry] of this.entries) if (Date.parse(entry.at) < cutoff) this.entries.delete(id);
    // Still full of recent entries: keep the newest half so the file stays bounded.
    if (this.entries.size >= this.compactAt) {
      const sorted = [...this.entries.values()].sort((a, b) => a.at.localeCompare(b.at));
      for (const entry of sorted.slice(0, sorted.length - Math.floor(this.compactAt / 2))) this.entries.delete(entry.commandId);
    }
    const text = [...this.entries.values()].map((e) => `${JSON.stringify(e)}\n`).join('');
    await writePrivateFile(this.path, text);
    this.lines = this.entries.size;
  }
}
