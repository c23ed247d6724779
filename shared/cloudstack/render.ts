// CloudStack response envelopes, JSON and XML. Handlers return plain objects; only this module
// knows how upstream wraps them, so both formats always carry the same data.
import { CloudStackError, InternalError } from './errors.ts';

export const CLOUDSTACK_VERSION = '4.20.0.0';

export type ResponseFormat = 'json' | 'xml';

export interface HttpResponse {
  statusCode: number;
  headers: Record<string, string>;
  body: string;
}

const CONTENT_TYPES: Record<ResponseFormat, string> = {
  json: 'application/json; charset=utf-8',
  xml: 'text/xml; charset=utf-8',
};

/** `response=json` selects JSON; anything else (or nothing) is XML, CloudStack's default. */
export function responseFormat(value: string | undefined): ResponseFormat {
  return value?.toLowerCase() === 'json' ? 'json' : 'xml';
}

/** `{"<command>response": body}` in the chosen format. */
export function renderResponse(
  responseName: string,
  body: Record<string, unknown>,
  format: ResponseFormat,
  statusCode = 200,
): HttpResponse {
  const text =
    format === 'json'
      ? JSON.stringify({ [responseName]: body })
      : `<?xml version="1.0" encoding="UTF-8"?>${xmlElement(responseName, body, {
          'cloud-stack-version': CLOUDSTACK_VERSION,
        })}`;
  return { statusCode, headers: { 'content-type': CONTENT_TYPES[format] }, body: text };
}

/** A list response: `count` and the items under `itemName`; an empty list has no array, as upstream. */
export function listBody(itemName: string, items: readonly unknown[], count = items.length) {
  return count === 0 && items.length === 0 ? {} : { count, [itemName]: items };
}

/**
 * The error envelope. The HTTP status equals `errorcode`. Anything that is not a CloudStackError is
 * an internal error whose details stay in the log, never in the response.
 */
export function renderError(commandName: string | undefined, error: unknown, format: ResponseFormat): HttpResponse {
  const known = error instanceof CloudStackError ? error : new InternalError();
  const body: Record<string, unknown> = { uuidList: [], errorcode: known.errorcode };
  if (known.cserrorcode !== undefined) body.cserrorcode = known.cserrorcode;
  body.errortext = known.message;
  const name = commandName ? `${commandName.toLowerCase()}response` : 'errorresponse';
  return renderResponse(name, body, format, known.errorcode);
}

function xmlElement(key: string, value: unknown, attributes: Record<string, string> = {}): string {
  const attrs = Object.entries(attributes)
    .map(([attribute, v]) => ` ${attribute}="${escapeXml(v)}"`)
    .join('');
  const name = xmlName(key);
  return `<${name}${attrs}>${xmlContent(value)}</${name}>`;
}

/** A key as an element name: a map's key may be any text, an element's name may not. */
const xmlName = (key: string) => (/^[A-Za-z_][\w.-]*$/.test(key) ? key : `_${key.replace(/[^\w.-]/g, '_')}`);

function xmlContent(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value !== 'object') return escapeXml(String(value));
  return Object.entries(value as Record<string, unknown>)
    .map(([key, child]) =>
      Array.isArray(child) ? child.map((item) => xmlElement(key, item)).join('') : xmlElement(key, child),
    )
    .join('');
}

/** Markup escaped; characters XML 1.0 cannot carry at all (most controls, lone surrogates) become U+FFFD. */
function escapeXml(text: string): string {
  return text
    .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\p{Cs}\ufffe\uffff]/gu, '\ufffd')
    .replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
