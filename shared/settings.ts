// The configuration catalogue: each setting Mold reads is declared once, with its type, default,
// scope and description. Values are overrides stored in the table; anything unset is the default.
import { GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { dynamo } from './aws.ts';
import { tableName } from './db/items.ts';
import { cloudstackDate } from './db/jobs.ts';

export type SettingType = 'Boolean' | 'Integer' | 'Long' | 'Float' | 'String';

export interface SettingDefinition {
  name: string;
  category: string;
  component: string;
  type: SettingType;
  defaultValue: string;
  description: string;
  scope: 'Global';
}

const define = (setting: Omit<SettingDefinition, 'scope'>): SettingDefinition => ({ ...setting, scope: 'Global' });

export const SETTINGS = [
  define({ name: 'default.page.size', category: 'Advanced', component: 'ManagementServer', type: 'Long', defaultValue: '500', description: 'Default page size for API list* commands' }),
  define({ name: 'api.throttling.enabled', category: 'Advanced', component: 'ApiServer', type: 'Boolean', defaultValue: 'false', description: 'Enable/disable Api rate limit' }),
  define({ name: 'api.throttling.interval', category: 'Advanced', component: 'ApiServer', type: 'Integer', defaultValue: '1', description: 'Time interval (in seconds) to reset API count' }),
  define({ name: 'api.throttling.max', category: 'Advanced', component: 'ApiServer', type: 'Integer', defaultValue: '25', description: 'Max allowed number of APIs within fixed interval' }),
  define({ name: 'session.timeout', category: 'Advanced', component: 'ApiServer', type: 'Integer', defaultValue: '1800', description: 'Seconds a login session may stay idle before it ends' }),
  define({ name: 'incorrect.login.attempts.allowed', category: 'Advanced', component: 'AccountManager', type: 'Integer', defaultValue: '5', description: 'Failed logins allowed per user, and per source address, within the login throttle window' }),
  define({ name: 'login.throttle.window', category: 'Advanced', component: 'AccountManager', type: 'Integer', defaultValue: '300', description: 'Seconds over which failed logins are counted' }),
  define({ name: 'api.signature.max.expiry', category: 'Advanced', component: 'ApiServer', type: 'Integer', defaultValue: '3600', description: 'How far ahead (seconds) the expires parameter of a signatureVersion=3 request may lie' }),
] as const satisfies readonly SettingDefinition[];

export type SettingName = (typeof SETTINGS)[number]['name'];

const BY_NAME = new Map<string, SettingDefinition>(SETTINGS.map((setting) => [setting.name, setting]));

export function settingDefinition(name: string): SettingDefinition | undefined {
  return BY_NAME.get(name);
}

function parse(definition: SettingDefinition, value: string): unknown {
  switch (definition.type) {
    case 'Boolean':
      return value.toLowerCase() === 'true';
    case 'Integer':
    case 'Long':
    case 'Float':
      return Number(value);
    default:
      return value;
  }
}

// All global overrides live in one item, read consistently with one GetItem a request.
const OVERRIDES_KEY = { pk: 'SETTINGS', sk: 'GLOBAL' };

/** The global values of every setting, overrides applied. */
export async function loadSettings(): Promise<Settings> {
  const { Item } = await dynamo().send(new GetCommand({ TableName: tableName(), Key: OVERRIDES_KEY, ConsistentRead: true }));
  return new Settings(new Map(Object.entries((Item?.values ?? {}) as Record<string, string>)));
}

export class Settings {
  private readonly overrides: Map<string, string>;
  constructor(overrides: Map<string, string>) {
    this.overrides = overrides;
  }
  raw(name: SettingName): string {
    return this.overrides.get(name) ?? BY_NAME.get(name)!.defaultValue;
  }
  number(name: SettingName): number {
    return parse(BY_NAME.get(name)!, this.raw(name)) as number;
  }
  boolean(name: SettingName): boolean {
    return parse(BY_NAME.get(name)!, this.raw(name)) as boolean;
  }
}

export async function storeSetting(name: SettingName, value: string): Promise<void> {
  await dynamo().send(
    new UpdateCommand({
      TableName: tableName(),
      Key: OVERRIDES_KEY,
      UpdateExpression: 'SET #values = if_not_exists(#values, :empty), updated = :now',
      ExpressionAttributeNames: { '#values': 'values' },
      ExpressionAttributeValues: { ':empty': {}, ':now': cloudstackDate() },
    }),
  );
  await dynamo().send(
    new UpdateCommand({
      TableName: tableName(),
      Key: OVERRIDES_KEY,
      UpdateExpression: 'SET #values.#name = :value',
      ExpressionAttributeNames: { '#values': 'values', '#name': name },
      ExpressionAttributeValues: { ':value': value },
    }),
  );
}
