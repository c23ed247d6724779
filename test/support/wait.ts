// Tests wait for a state, never for a time. A deadline is what the wait needs on a quiet two-core
// machine, derived from the settings the test set where there are any, stretched by SLACK so that the
// suite still passes on a machine running at a third of its speed. A wait that runs out says what it
// waited for and what it saw last. Speed itself is measured in bench/, never asserted here.

/** How many times slower than a quiet machine the suite may run and still pass (MOLD_TEST_SLACK, default 3). */
export const SLACK = Math.max(1, Number(process.env.MOLD_TEST_SLACK ?? 3) || 3);

/** A quiet machine's `ms`, stretched for a busy one: for deadlines and test time-outs. */
export const patience = (ms: number): number => Math.round(ms * SLACK);

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface WaitOptions {
  /** What the wait needs on a quiet machine, in ms (stretched by SLACK); default 30 s. */
  within?: number;
  /** Pause between reads, in ms; default 100. */
  every?: number;
}

/** Reads until `check` holds and returns that value; an error thrown by `read` ends the wait. */
export async function until<T>(what: string, read: () => T | Promise<T>, check: (value: T) => boolean, options: WaitOptions = {}): Promise<T> {
  const limit = patience(options.within ?? 30_000);
  const deadline = Date.now() + limit;
  for (;;) {
    const value = await read();
    if (check(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${limit} ms waiting for ${what}; last seen: ${show(value)}`);
    await sleep(options.every ?? 100);
  }
}

/** Waits until `condition` is true. */
export async function waitFor(what: string, condition: () => boolean | Promise<boolean>, options: WaitOptions = {}): Promise<void> {
  await until(what, condition, (holds) => holds === true, options);
}

/**
 * `work`'s outcome, or an error if it has not settled within `quietMs` (stretched by SLACK): how a
 * test proves that something ends (fails fast rather than hangs) without asserting how fast.
 */
export async function settles<T>(what: string, work: Promise<T>, quietMs: number): Promise<T> {
  const limit = patience(quietMs);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not end within ${limit} ms`)), limit)));
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}

function show(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 2000 ? `${text.slice(0, 2000)}…` : text;
}
