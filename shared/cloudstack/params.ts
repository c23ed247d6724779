// CloudStack's parameter types as zod schemas carrying their listApis metadata (type, description,
// length), so one definition drives validation, listApis and the docs. Values arrive as strings;
// maps arrive grouped (`details[0].key=…` → details: [{key: …}]) by the request parser.
import { z } from 'zod';

export type ParamType = 'uuid' | 'string' | 'integer' | 'long' | 'boolean' | 'list' | 'map' | 'date' | 'short';

export interface ParamMeta {
  cstype: ParamType;
  description: string;
  length?: number;
  since?: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const metaRegistry = z.registry<ParamMeta>();

function described<T extends z.ZodType>(schema: T, meta: ParamMeta): T {
  metaRegistry.add(schema, meta);
  return schema;
}

const integerText = (message: string) => z.string().trim().regex(/^-?\d+$/, message).transform(Number);

export const param = {
  uuid: (description: string) => described(z.string().regex(UUID, 'is not a valid UUID'), { cstype: 'uuid', description }),
  string: (description: string, length = 255) =>
    described(z.string().max(length, `is longer than ${length} characters`), { cstype: 'string', description, length }),
  integer: (description: string) => described(integerText('is not an integer'), { cstype: 'integer', description }),
  long: (description: string) => described(integerText('is not a whole number'), { cstype: 'long', description }),
  boolean: (description: string) =>
    described(
      z
        .string()
        .regex(/^(true|false)$/i, 'must be true or false')
        .transform((value) => value.toLowerCase() === 'true'),
      { cstype: 'boolean', description },
    ),
  /** One of a fixed set of values, matched case-insensitively and returned as spelled here. */
  oneOf: <const V extends readonly [string, ...string[]]>(values: V, description: string) =>
    described(
      z.string().transform((value, ctx) => {
        const found = values.find((v) => v.toLowerCase() === value.toLowerCase());
        if (!found) {
          ctx.addIssue({ code: 'custom', message: `must be one of ${values.join(', ')}` });
          return z.NEVER;
        }
        return found as V[number];
      }),
      { cstype: 'string', description },
    ),
  /** A comma-separated list. */
  list: <T extends z.ZodType>(item: T, description: string) =>
    described(
      z
        .string()
        .transform((value) => value.split(',').map((part) => part.trim()).filter(Boolean))
        .pipe(z.array(item) as z.ZodType<z.output<T>[], string[]>),
      { cstype: 'list', description },
    ),
  /** `name[0].key=…&name[0].value=…`: a list of objects. */
  map: (description: string) =>
    described(z.array(z.record(z.string(), z.string())), { cstype: 'map', description }),
  date: (description: string) =>
    described(
      z.string().refine((value) => !Number.isNaN(Date.parse(value)), 'is not a date (yyyy-MM-dd or yyyy-MM-dd HH:mm:ss)'),
      { cstype: 'date', description },
    ),
};

/** The listApis view of one parameter schema: its metadata and whether it is required. */
export function describeParam(schema: z.ZodType): ParamMeta & { required: boolean } {
  let inner: z.ZodType = schema;
  let required = true;
  for (;;) {
    const def = (inner as unknown as { _zod: { def: { type: string; innerType?: z.ZodType } } })._zod.def;
    if ((def.type === 'optional' || def.type === 'default') && def.innerType) {
      required = false;
      inner = def.innerType;
      continue;
    }
    break;
  }
  const meta = metaRegistry.get(inner) ?? { cstype: 'string', description: '' };
  return { ...meta, required };
}

/** Parameters every list command takes, as upstream's BaseListCmd. */
export const listParams = {
  keyword: param.string('List by keyword').optional(),
  page: param.integer('Page number, from 1').optional(),
  pagesize: param.integer('Number of items per page').optional(),
};

/** Upstream's BaseListAccountResourcesCmd / BaseListDomainResourcesCmd parameters. */
export const scopeParams = {
  account: param.string('list resources by account. Must be used with the domainId parameter.').optional(),
  domainid: param.uuid('list only resources belonging to the domain specified').optional(),
  isrecursive: param
    .boolean('defaults to false, but if true, lists all resources from the parent specified by the domainId till leaves.')
    .optional(),
  listall: param
    .boolean('If set to false, list only resources belonging to the command\'s caller; if set to true - list resources that the caller is authorized to see. Default value is false')
    .optional(),
};
