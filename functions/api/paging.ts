// Upstream's list conventions: `keyword`, `page`/`pagesize` (pagesize at most default.page.size,
// -1 for everything), and `count` the number of matches before paging.
import { InvalidParameter } from '../../shared/cloudstack/errors.ts';
import { listBody } from '../../shared/cloudstack/render.ts';
import type { Settings } from '../../shared/settings.ts';

export interface PageParams {
  page?: number;
  pagesize?: number;
  keyword?: string;
}

export function page<T>(items: readonly T[], params: PageParams, settings: Settings): T[] {
  const max = settings.number('default.page.size');
  const size = params.pagesize ?? max;
  if (params.pagesize !== undefined && params.pagesize !== -1 && (params.pagesize < 1 || params.pagesize > max)) {
    throw new InvalidParameter(`Page size can't exceed max allowed page size value: ${max}`);
  }
  if (params.page !== undefined && params.page < 1) throw new InvalidParameter('Please specify a valid page number');
  if (size === -1) return [...items];
  const start = ((params.page ?? 1) - 1) * size;
  return items.slice(start, start + size);
}

/** The list response body: `count` of all matches, the requested page under `itemName`. */
export function listResponse<T, R>(
  itemName: string,
  items: readonly T[],
  params: PageParams,
  settings: Settings,
  render: (item: T) => R,
) {
  return listBody(itemName, page(items, params, settings).map(render), items.length);
}

/** Upstream's keyword search: a case-insensitive substring of the name (or other given fields). */
export function matchesKeyword(keyword: string | undefined, ...fields: (string | undefined)[]): boolean {
  if (!keyword) return true;
  const needle = keyword.toLowerCase();
  return fields.some((field) => field?.toLowerCase().includes(needle));
}
