// The agent's output: one JSON object a line on stdout (stderr for warnings and errors), so an
// operator's log shipper, or a test, can follow it. Secrets never reach here: callers pass only ids,
// addresses and outcomes.
import { jsonLog } from '../shared/log.ts';

export const log = jsonLog('MOLD_AGENT_LOG_LEVEL');

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
