// Structured JSON logs, one object a line, so one command can be followed by its request and job ids.
type Fields = Record<string, unknown>;
type Level = 'debug' | 'info' | 'warn' | 'error';

/** A logger whose level comes from `levelVariable` (`debug`, `info` or `silent`; default info). */
export function jsonLog(levelVariable: string) {
  const write = (level: Level, message: string, fields: Fields = {}) => {
    const threshold = process.env[levelVariable];
    if (threshold === 'silent') return;
    if (level === 'debug' && threshold !== 'debug') return;
    const line = JSON.stringify({ time: new Date().toISOString(), level, message, ...fields });
    (level === 'error' || level === 'warn' ? process.stderr : process.stdout).write(`${line}\n`);
  };
  return {
    debug: (message: string, fields?: Fields) => write('debug', message, fields),
    info: (message: string, fields?: Fields) => write('info', message, fields),
    warn: (message: string, fields?: Fields) => write('warn', message, fields),
    error: (message: string, fields?: Fields) => write('error', message, fields),
  };
}

export const log = jsonLog('MOLD_LOG_LEVEL');
