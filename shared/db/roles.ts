// Roles and their ordered allow/deny rules. A rule is an API name with `*` wildcards; the first
// rule that matches a command decides, and a command no rule matches falls back to the role types
// its definition allows (upstream's annotation fallback).
import { TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { randomUUID } from 'node:crypto';
import { dynamo } from '../aws.ts';
import { getItem, isConditionFailure, queryIndex, tableName } from './items.ts';
import type { RoleType } from './identity.ts';

export type Permission = 'allow' | 'deny';

export interface RolePermission {
  id: string;
  rule: string;
  permission: Permission;
  description?: string;
}

export interface Role {
  id: string;
  name: string;
  type: RoleType;
  description?: string;
  /** A built-in role: it cannot be changed or deleted. */
  isdefault: boolean;
  ispublic: boolean;
  /** In evaluation order: the first rule that matches a command decides. */
  permissions: RolePermission[];
  /** Bumped by every save; a save based on an older revision fails (no lost updates). */
  revision?: number;
}

/** Upstream's Rule: API names and `*` wildcards only. */
export const RULE_PATTERN = /^[a-zA-Z0-9*]+$/;

/** As upstream's Rule.matches: case-insensitive, `*` standing for any run of name characters. */
export function ruleMatches(rule: string, apiName: string): boolean {
  if (!rule.includes('*')) return rule.toLowerCase() === apiName.toLowerCase();
  return new RegExp(`^${rule.replace(/\*/g, '[a-zA-Z0-9_]*')}$`, 'i').test(apiName);
}

/** allow or deny by the first matching rule; undefined when no rule matches. */
export function decide(role: Role, apiName: string): Permission | undefined {
  return role.permissions.find((permission) => ruleMatches(permission.rule, apiName))?.permission;
}

export const roleKey = (id: string) => ({ pk: `ROLE#${id}`, sk: 'ROLE' });
const nameGuard = (name: string) => ({ pk: `ROLENAME#${name.toLowerCase()}`, sk: 'GUARD' });
const permissionGuard = (id: string) => ({ pk: `ROLEPERMISSION#${id}`, sk: 'GUARD' });

function roleItem(role: Role) {
  return { ...roleKey(role.id), gsi1pk: 'ROLES', gsi1sk: role.name.toLowerCase(), ...role };
}

export class DuplicateRole extends Error {}
/** The role changed between reading and saving it. */
export class ConcurrentRoleChange extends Error {}

export const getRole = (id: string) => getItem<Role>(roleKey(id).pk, 'ROLE');

export const listRoles = () => queryIndex<Role>({ index: 'gsi1', partition: 'ROLES' });

export async function findRoleByPermission(permissionId: string): Promise<Role | undefined> {
  const guard = await getItem<{ roleId: string }>(permissionGuard(permissionId).pk, 'GUARD');
  return guard ? getRole(guard.roleId) : undefined;
}

export async function createRole(fields: Omit<Role, 'id' | 'permissions'> & { id?: string; permissions?: Omit<RolePermission, 'id'>[] }): Promise<Role> {
  const role: Role = {
    ...fields,
    id: fields.id ?? randomUUID(),
    permissions: (fields.permissions ?? []).map((permission) => ({ id: randomUUID(), ...permission })),
  };
  try {
    await dynamo().send(
      new TransactWriteCommand({
        TransactItems: [
          { Put: { TableName: tableName(), Item: roleItem(role), ConditionExpression: 'attribute_not_exists(pk)' } },
          { Put: { TableName: tableName(), Item: { ...nameGuard(role.name), id: role.id }, ConditionExpression: 'attribute_not_exists(pk)' } },
          ...role.permissions.map((permission) => ({
            Put: { TableName: tableName(), Item: { ...permissionGuard(permission.id), roleId: role.id } },
          })),
        ],
      }),
    );
  } catch (error) {
    if (isConditionFailure(error)) throw new DuplicateRole(`Role with name ${role.name} already exists`);
    throw error;
  }
  return role;
}

/**
 * Saves name, description, type, visibility and the rule list; guards follow renames and rule ids.
 * Fails with ConcurrentRoleChange when the role was saved by someone else since `before` was read.
 */
export async function saveRole(before: Role, after: Role): Promise<Role> {
  const saved: Role = { ...after, revision: (before.revision ?? 0) + 1 };
  const items: Record<string, unknown>[] = [
    {
      Put: {
        TableName: tableName(),
        Item: roleItem(saved),
        ConditionExpression: before.revision === undefined ? 'attribute_exists(pk) AND attribute_not_exists(revision)' : 'revision = :revision',
        ...(before.revision !== undefined && { ExpressionAttributeValues: { ':revision': before.revision } }),
      },
    },
  ];
  if (before.name.toLowerCase() !== after.name.toLowerCase()) {
    items.push({ Delete: { TableName: tableName(), Key: nameGuard(before.name) } });
    items.push({ Put: { TableName: tableName(), Item: { ...nameGuard(after.name), id: after.id }, ConditionExpression: 'attribute_not_exists(pk)' } });
  }
  const kept = new Set(after.permissions.map((p) => p.id));
  const had = new Set(before.permissions.map((p) => p.id));
  for (const permission of before.permissions) {
    if (!kept.has(permission.id)) items.push({ Delete: { TableName: tableName(), Key: permissionGuard(permission.id) } });
  }
  for (const permission of after.permissions) {
    if (!had.has(permission.id)) items.push({ Put: { TableName: tableName(), Item: { ...permissionGuard(permission.id), roleId: after.id } } });
  }
  try {
    await dynamo().send(new TransactWriteCommand({ TransactItems: items as never }));
  } catch (error) {
    if (isConditionFailure(error)) {
      // Which condition failed: the role's revision (someone saved first) or the new name's guard.
      const current = await getRole(before.id);
      if (!current || current.revision !== before.revision) throw new ConcurrentRoleChange(`Role ${before.name} was changed concurrently`);
      throw new DuplicateRole(`Role with name ${after.name} already exists`);
    }
    throw error;
  }
  return saved;
}

/** Deletes the role as read; fails with ConcurrentRoleChange if it was saved since. */
export async function deleteRoleRecord(role: Role): Promise<void> {
  const unchanged =
    role.revision === undefined
      ? { ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(revision)' }
      : { ConditionExpression: 'revision = :revision', ExpressionAttributeValues: { ':revision': role.revision } };
  await dynamo().send(
    new TransactWriteCommand({
      TransactItems: [
        { Delete: { TableName: tableName(), Key: roleKey(role.id), ...unchanged } },
        { Delete: { TableName: tableName(), Key: nameGuard(role.name) } },
        ...role.permissions.map((permission) => ({ Delete: { TableName: tableName(), Key: permissionGuard(permission.id) } })),
      ] as never,
    }),
  ).catch((error) => {
    if (isConditionFailure(error)) throw new ConcurrentRoleChange(`Role ${role.name} was changed concurrently`);
    throw error;
  });
}
