// The agent's output: one JSON object a line on stdout (stderr for warnings and errors), so an
// operator's log shipper, or a test, can follow it. Secrets never reach here: callers pass only ids,
// addresses and outcomes.
type Fields = Record<string, unknown>;

function write(level: 'debug' | 'info' | 'warn' | 'error', message: string, fields: Fields = {}) {
  if (level === 'debug' && process.env.MOLD_AGENT_LOG_LEVEL !== 'debug') return;
  const line = JSON.stringify({ time: new Date().toISOString(), level, message, ...fields });
  (level === 'error' || level === 'warn' ? process.stderr : process.stdout).write(`${line}\n`);
}

export const log = {
  debug: (message: string, fields?: Fields) => write('debug', message, fields),
  info: (message: string, fields?: Fields) => write('info', message, fields),
  warn: (message: string, fields?: Fields) => write('warn', message, fields),
  error: (message: string, fields?: Fields) => write('error', message, fields),
};

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
