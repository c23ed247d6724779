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
  /** A list's item type (upstream's collectionType). */
  collectionType?: ParamType;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const metaRegistry = z.registry<ParamMeta>();

function described<T extends z.ZodType>(schema: T, meta: ParamMeta): T {
  metaRegistry.add(schema, meta);
  return schema;
}

// ---- whole numbers: upstream's Integer.valueOf and Long.valueOf, and what a JS number keeps exactly ----

/** Java's int, and the whole numbers a JS number (and DynamoDB's marshaller, as Mold stores them) keeps exactly. */
const INT_RANGE = { min: -(2n ** 31n), max: 2n ** 31n - 1n, name: 'an integer' };
const LONG_RANGE = { min: -(2n ** 63n), max: 2n ** 63n - 1n, name: 'a long' };
const EXACT = BigInt(Number.MAX_SAFE_INTEGER);

/** Digits with an optional sign, within `range` (and within ±(2^53 − 1), as Mold keeps them in numbers). */
function wholeNumber(notANumber: string, range: { min: bigint; max: bigint; name: string }) {
  return z
    .string()
    .trim()
    .regex(/^[+-]?\d+$/, notANumber)
    .transform((text, ctx) => {
      const value = BigInt(text.replace(/^\+/, ''));
      if (value < range.min || value > range.max) {
        ctx.addIssue({ code: 'custom', message: `is out of range for ${range.name} (${range.min} to ${range.max})` });
        return z.NEVER;
      }
      if (value > EXACT || value < -EXACT) {
        ctx.addIssue({ code: 'custom', message: `is beyond ±${EXACT}, the largest whole number Mold keeps exactly` });
        return z.NEVER;
      }
      return Number(value);
    });
}

// ---- characters: what a rendered response, a log line, a libvirt XML or a file name can carry ----

/**
 * Never in any parameter: C0 and C1 controls and DEL (but tab, line feed and carriage return), lone
 * surrogates, and U+FFFE/U+FFFF. None of them can be written in an XML 1.0 answer.
 */
const NOT_IN_TEXT = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\p{Cs}\ufffe\uffff]/u;
/**
 * Never in a name (an identifier: what lists, paths and hosts show): nor tab and line breaks, the
 * bidirectional formatting characters (marks, embeddings, overrides, isolates: they make one name look
 * like another), the byte order mark and the line and paragraph separators. Joiners stay: scripts and
 * emoji need them.
 */
const NOT_IN_NAME = /[\u0000-\u001f\u007f-\u009f\p{Cs}\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029\ufeff\ufff9-\ufffb\ufffe\uffff]/u;

const codePoint = (character: string) => `U+${character.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

/** A string of at most `length` characters, none of them matched by `forbidden`. */
function characters(length: number, forbidden: RegExp, what: string) {
  return z
    .string()
    .max(length, `is longer than ${length} characters`)
    .superRefine((value, ctx) => {
      const found = forbidden.exec(value);
      if (found) ctx.addIssue({ code: 'custom', message: `contains ${what} (${codePoint(found[0])})` });
    });
}

export const param = {
  uuid: (description: string) => described(z.string().regex(UUID, 'is not a valid UUID'), { cstype: 'uuid', description }),
  /** A name, a filter, a value of a set: no control or bidirectional formatting characters. */
  string: (description: string, length = 255) =>
    described(characters(length, NOT_IN_NAME, 'a control or formatting character'), { cstype: 'string', description, length }),
  /** Free text (display texts, descriptions, passwords, keys, user data): line breaks and right-to-left text, no controls. */
  text: (description: string, length = 255) =>
    described(characters(length, NOT_IN_TEXT, 'a control character'), { cstype: 'string', description, length }),
  integer: (description: string) => described(wholeNumber('is not an integer', INT_RANGE), { cstype: 'integer', description }),
  long: (description: string) => described(wholeNumber('is not a whole number', LONG_RANGE), { cstype: 'long', description }),
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
      { cstype: 'list', description, collectionType: describeParam(item).cstype },
    ),
  /** `name[0].key=…&name[0].value=…`: a list of objects. */
  map: (description: string) =>
    described(
      z.array(
        z.record(z.string(), characters(Number.MAX_SAFE_INTEGER, NOT_IN_TEXT, 'a control character')).superRefine((entry, ctx) => {
          for (const key of Object.keys(entry)) {
            const found = NOT_IN_NAME.exec(key);
            if (found) ctx.addIssue({ code: 'custom', message: `contains a control or formatting character in a key (${codePoint(found[0])})` });
          }
        }),
      ),
      { cstype: 'map', description },
    ),
  date: (description: string) =>
    described(
      characters(64, NOT_IN_TEXT, 'a control character').refine((value) => !Number.isNaN(Date.parse(value)), 'is not a date (yyyy-MM-dd or yyyy-MM-dd HH:mm:ss)'),
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
