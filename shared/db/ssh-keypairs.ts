// SSH key pairs (upstream's ssh_keypairs): a name, the public key and its fingerprint, owned by an
// account. The private key of a generated pair is handed out once and never stored. A pair's name
// (case-insensitively, as upstream's MySQL collation compares) and its public key are each unique in
// the account: both are claimed with guard items in the same transaction as the record, so two
// concurrent calls cannot both win.
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { createHash, randomUUID } from 'node:crypto';
import { dynamo } from '../aws.ts';
import { getItem, isConditionFailure, queryIndexEntries, tableName } from './items.ts';
import { cloudstackDate } from './jobs.ts';

export interface SshKeyPair {
  id: string;
  name: string;
  /** `<type> <base64 blob>`, without a comment. */
  publicKey: string;
  fingerprint: string;
  accountId: string;
  domainId: string;
  domainTree: string;
  created: string;
}

/** The name or the public key is already the account's (which one, for upstream's message). */
export class DuplicateKeyPair extends Error {
  readonly field: 'name' | 'publickey';
  constructor(field: 'name' | 'publickey') {
    super(`duplicate key pair ${field}`);
    this.field = field;
  }
}

const LISTING = 'SSHKEYPAIRS';

export const keyPairKey = {
  record: (id: string) => ({ pk: `SSHKEYPAIR#${id}`, sk: 'SSHKEYPAIR' }),
  name: (accountId: string, name: string) => ({ pk: `SSHKEYPAIRNAME#${accountId}#${name.toLowerCase()}`, sk: 'GUARD' }),
  publicKey: (accountId: string, publicKey: string) => ({
    pk: `SSHKEYPAIRKEY#${accountId}#${createHash('sha256').update(publicKey).digest('hex')}`,
    sk: 'GUARD',
  }),
};

/** Listed by owner: `<domain tree><account id>/<creation instant>#<id>`, so a subtree or an account is a prefix. */
const listingKey = (pair: SshKeyPair, at: string) => `${pair.domainTree}${pair.accountId}/${at}#${pair.id}`;

export async function createKeyPairRecord(fields: Omit<SshKeyPair, 'id' | 'created'>): Promise<SshKeyPair> {
  const pair: SshKeyPair = { ...fields, id: randomUUID(), created: cloudstackDate() };
  const put = (Item: Record<string, unknown>) => ({ Put: { TableName: tableName(), Item, ConditionExpression: 'attribute_not_exists(pk)' } });
  const items = [
    put({ ...keyPairKey.record(pair.id), gsi1pk: LISTING, gsi1sk: listingKey(pair, new Date().toISOString()), ...pair }),
    put({ ...keyPairKey.name(pair.accountId, pair.name), id: pair.id }),
    put({ ...keyPairKey.publicKey(pair.accountId, pair.publicKey), id: pair.id }),
  ];
  for (let attempt = 1; ; attempt++) {
    try {
      await dynamo().send(new TransactWriteCommand({ TransactItems: items }));
      return pair;
    } catch (error) {
      if (!isConditionFailure(error)) throw error;
      const failed = ((error as { CancellationReasons?: { Code?: string }[] }).CancellationReasons ?? []).map((r) => r?.Code === 'ConditionalCheckFailed');
      if (failed[1]) throw new DuplicateKeyPair('name');
      if (failed[2]) throw new DuplicateKeyPair('publickey');
      // Cancelled only by a concurrent transaction on the same guards: the next attempt finds out who won.
      if (attempt === 3) throw new DuplicateKeyPair('name');
    }
  }
}

export const getKeyPair = (id: string) => getItem<SshKeyPair>(keyPairKey.record(id).pk, 'SSHKEYPAIR');

async function byGuard(key: { pk: string; sk: string }): Promise<SshKeyPair | undefined> {
  const guard = await getItem<{ id: string }>(key.pk, key.sk);
  return guard ? getKeyPair(guard.id) : undefined;
}

/** The account's pair of that name (upstream's SSHKeyPairDao.findByName), case-insensitively. */
export const findKeyPairByName = (accountId: string, name: string) => byGuard(keyPairKey.name(accountId, name));

/** The account's pair with that public key (`<type> <blob>`), as upstream's findByPublicKey. */
export const findKeyPairByPublicKey = (accountId: string, publicKey: string) => byGuard(keyPairKey.publicKey(accountId, publicKey));

/**
 * The pairs owned in the subtree at `tree` (or, with `accountId`, by that account of the domain at
 * `tree`), newest first: upstream lists them by id, descending.
 */
export async function listKeyPairsUnder(tree: string, accountId?: string): Promise<SshKeyPair[]> {
  const entries = await queryIndexEntries<SshKeyPair>({ index: 'gsi1', partition: LISTING, prefix: accountId ? `${tree}${accountId}/` : tree });
  const order = (sortKey: string) => sortKey.slice(sortKey.lastIndexOf('/') + 1);
  return entries.sort((a, b) => (order(a.sortKey) < order(b.sortKey) ? 1 : order(a.sortKey) > order(b.sortKey) ? -1 : 0)).map((entry) => entry.item);
}

/** Removes the pair and its guards; false when it was already gone. */
export async function deleteKeyPairRecord(pair: SshKeyPair): Promise<boolean> {
  try {
    await dynamo().send(
      new TransactWriteCommand({
        TransactItems: [
          { Delete: { TableName: tableName(), Key: keyPairKey.record(pair.id), ConditionExpression: 'attribute_exists(pk)' } },
          { Delete: { TableName: tableName(), Key: keyPairKey.name(pair.accountId, pair.name) } },
          { Delete: { TableName: tableName(), Key: keyPairKey.publicKey(pair.accountId, pair.publicKey) } },
        ],
      }),
    );
    return true;
  } catch (error) {
    if (isConditionFailure(error)) return false;
    throw error;
  }
}

/** Every pair of the account (its deletion, as upstream's AccountManagerImpl.cleanupAccount). Idempotent. */
export async function deleteAccountKeyPairs(account: { id: string; domainTree: string }): Promise<number> {
  let deleted = 0;
  for (const pair of await listKeyPairsUnder(account.domainTree, account.id)) if (await deleteKeyPairRecord(pair)) deleted++;
  return deleted;
}
