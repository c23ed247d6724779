// The slow-request guard: a request that runs longer than api.slow.request.threshold milliseconds is
// logged with its command and request id: once when it passes the bound while still running (a
// request that never ends is seen too), and once when it ends, with how long it took. A request that
// reads no settings (refused before: no credentials, too large) is held to the bound last read.
import { performance } from 'node:perf_hooks';
import { log } from '../../shared/log.ts';
import { settingDefinition, type Settings } from '../../shared/settings.ts';

/** A caller-chosen command name goes into the log only this long. */
const NAME_IN_LOG = 100;

/** The bound as this process last read it. */
let lastBound = Number(settingDefinition('api.slow.request.threshold')!.defaultValue);

/** Watches one request since `started`; `bound` hands it the settings once the request reads them. */
export function watchSlowRequest(requestId: string, commandName: string | undefined, started = performance.now()) {
  const command = commandName?.slice(0, NAME_IN_LOG);
  const elapsed = () => performance.now() - started;
  let bound = lastBound;
  let finished = false;
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(timer);
    timer = setTimeout(() => log.warn('slow request', { requestId, command, ms: Math.round(elapsed()), running: true }), Math.max(0, bound - elapsed()));
    timer.unref();
  };
  arm();
  return {
    bound(settings: Promise<Settings>) {
      settings
        .then((loaded) => {
          lastBound = loaded.number('api.slow.request.threshold');
          if (finished || lastBound === bound) return;
          bound = lastBound;
          arm();
        })
        .catch(() => {});
    },
    done(status: number | undefined) {
      finished = true;
      clearTimeout(timer);
      const ms = elapsed();
      if (ms >= bound) log.warn('slow request', { requestId, command, ms: Math.round(ms), status });
    },
  };
}
