// Domains, accounts and users: the records the API authenticates against. Unique names and API
// keys are claimed with guard items in the same transaction as the record, so no two can collide.
import { GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { randomBytes, randomUUID } from 'node:crypto';
import { dynamo, env } from '../aws.ts';
import { hashPassword } from '../crypto/passwords.ts';
import { sealSecret } from '../crypto/secrets.ts';
import { cloudstackDate } from './jobs.ts';
import { TABLE_NAME_VARIABLE } from './table.ts';

export interface RootAdminCredentials {
  domain: string;
  domainid: string;
  username: string;
  password: string;
  apikey: string;
  secretkey: string;
}

const BOOTSTRAP_KEY = { pk: 'BOOTSTRAP', sk: 'ROOT' };

/** A random credential in the URL-safe alphabet CloudStack's generated keys use. */
export function randomCredential(bytes = 48): string {
  return randomBytes(bytes).toString('base64url');
}

export async function isBootstrapped(): Promise<boolean> {
  const { Item } = await dynamo().send(new GetCommand({ TableName: env(TABLE_NAME_VARIABLE), Key: BOOTSTRAP_KEY }));
  return Boolean(Item);
}

/**
 * Creates the ROOT domain and the root admin (account and user `admin`) once. Returns the
 * credentials, which exist in clear only in this return value; undefined when already done.
 */
export async function bootstrapRootAdmin(): Promise<RootAdminCredentials | undefined> {
  if (await isBootstrapped()) return undefined;
  const TableName = env(TABLE_NAME_VARIABLE);
  const created = cloudstackDate();
  const domainid = randomUUID();
  const accountid = randomUUID();
  const userid = randomUUID();
  const credentials: RootAdminCredentials = {
    domain: 'ROOT',
    domainid,
    username: 'admin',
    password: randomCredential(18),
    apikey: randomCredential(),
    secretkey: randomCredential(),
  };
  const put = (Item: Record<string, unknown>) => ({
    Put: { TableName, Item, ConditionExpression: 'attribute_not_exists(pk)' },
  });
  await dynamo().send(
    new TransactWriteCommand({
      TransactItems: [
        put({ ...BOOTSTRAP_KEY, created }),
        put({
          pk: `DOMAIN#${domainid}`, sk: 'DOMAIN', gsi1pk: 'DOMAIN', gsi1sk: 'ROOT',
          id: domainid, name: 'ROOT', path: 'ROOT', level: 0, state: 'Active', created,
        }),
        put({
          pk: `ACCOUNT#${accountid}`, sk: 'ACCOUNT', gsi1pk: `ACCOUNT#${domainid}`, gsi1sk: 'admin',
          id: accountid, name: 'admin', accounttype: 1, roletype: 'Admin', rolename: 'Root Admin',
          domainid, state: 'enabled', created,
        }),
        put({
          pk: `USER#${userid}`, sk: 'USER', gsi1pk: `USER#${accountid}`, gsi1sk: 'admin',
          id: userid, username: 'admin', firstname: 'Admin', lastname: 'User', accountid, domainid,
          state: 'enabled', created, password: await hashPassword(credentials.password),
          apikey: credentials.apikey, secretkey: sealSecret(credentials.secretkey),
        }),
        put({ pk: `USERNAME#${domainid}#admin`, sk: 'USERNAME', userid }),
        put({ pk: `APIKEY#${credentials.apikey}`, sk: 'APIKEY', userid }),
      ],
    }),
  );
  return credentials;
}
