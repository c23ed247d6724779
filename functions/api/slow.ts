// The slow-request guard: a request that runs longer than api.slow.request.threshold milliseconds is
// logged with its command and request id: once when it passes the bound while still running (a
// request that never ends is seen too), and once when it ends, with how long it took.
import { performance } from 'node:perf_hooks';
import { log } from '../../shared/log.ts';
import type { Settings } from '../../shared/settings.ts';

/** A caller-chosen command name goes into the log only this long. */
const NAME_IN_LOG = 100;

export function watchSlowRequest(requestId: string, commandName: string | undefined, settings: Promise<Settings>) {
  const started = performance.now();
  const command = commandName?.slice(0, NAME_IN_LOG);
  let bound: number | undefined;
  let finished = false;
  let timer: NodeJS.Timeout | undefined;
  settings
    .then((loaded) => {
      bound = loaded.number('api.slow.request.threshold');
      if (finished) return;
      timer = setTimeout(() => log.warn('slow request', { requestId, command, ms: Math.round(performance.now() - started), running: true }), bound);
      timer.unref();
    })
    .catch(() => {});
  return {
    done(status: number | undefined) {
      finished = true;
      clearTimeout(timer);
      const ms = performance.now() - started;
      if (bound !== undefined && ms >= bound) log.warn('slow request', { requestId, command, ms: Math.round(ms), status });
    },
  };
}
