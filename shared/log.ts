// Structured JSON logs, one object a line, so one command can be followed by its request and job ids.
type Fields = Record<string, unknown>;

function write(level: 'debug' | 'info' | 'warn' | 'error', message: string, fields: Fields = {}) {
  if (process.env.MOLD_LOG_LEVEL === 'silent') return;
  if (level === 'debug' && process.env.MOLD_LOG_LEVEL !== 'debug') return;
  const line = JSON.stringify({ time: new Date().toISOString(), level, message, ...fields });
  (level === 'error' || level === 'warn' ? process.stderr : process.stdout).write(`${line}\n`);
}

export const log = {
  debug: (message: string, fields?: Fields) => write('debug', message, fields),
  info: (message: string, fields?: Fields) => write('info', message, fields),
  warn: (message: string, fields?: Fields) => write('warn', message, fields),
  error: (message: string, fields?: Fields) => write('error', message, fields),
};
