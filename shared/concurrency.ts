// Independent steps run a few at a time: enough to overlap their round trips to DynamoDB, few enough
// that writes to a shared item (a host's capacity counters) rarely conflict.

/** Runs `step` for every item, at most `limit` at once; resolves when all have ended (a step must not throw). */
export async function forEachConcurrently<T>(items: readonly T[], limit: number, step: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await step(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
