// Upstream's DATE parameters (ParamProcessWorker): read the same way by every command that takes one.
import { InvalidParameter } from '../../shared/cloudstack/errors.ts';

/**
 * A DATE parameter in ms: "yyyy-MM-dd HH:mm:ss", an ISO 8601 time with its offset (what the CloudStack
 * UI sends, moment's format()), or "yyyy-MM-dd" (the leading date; a start date then means 00:00:00
 * and an end date 23:59:59). Times without an offset are UTC.
 */
export function parseDateParam(value: string, bound: 'start' | 'end', api: string): number {
  const text = value.trim();
  const iso = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$/.test(text) ? Date.parse(text) : Number.NaN;
  if (!Number.isNaN(iso)) return iso;
  const full = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})$/.exec(text);
  const day = full ?? /^(\d{4})-(\d{2})-(\d{2})/.exec(text);
  if (day) {
    const [y, mo, d] = [Number(day[1]), Number(day[2]), Number(day[3])];
    const [h, mi, s] = full ? [Number(full[4]), Number(full[5]), Number(full[6])] : bound === 'start' ? [0, 0, 0] : [23, 59, 59];
    const time = Date.UTC(y, mo - 1, d, h, mi, s);
    const back = new Date(time);
    if (back.getUTCFullYear() === y && back.getUTCMonth() === mo - 1 && back.getUTCDate() === d && back.getUTCHours() === h && back.getUTCMinutes() === mi) {
      return time;
    }
  }
  throw new InvalidParameter(`Unable to parse date ${value} for command ${api}, please pass dates in the format mentioned in the api documentation`);
}
