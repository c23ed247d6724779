// The eight roles every Mold starts with, as upstream ships them. Root Admin allows everything; the
// Resource Admin, Domain Admin and User roles carry no rules, so each command's own role types
// decide (upstream lists the same APIs rule by rule); the read-only and support roles allow reads
// and a few operations, and deny the rest.
import type { RoleType } from './identity.ts';
import type { Permission } from './roles.ts';

type Rule = [rule: string, permission: Permission];

const READ_ONLY_ADMIN: Rule[] = [
  ['list*', 'allow'],
  ['getUploadParamsFor*', 'deny'],
  ['get*', 'allow'],
  ['queryAsyncJobResult', 'allow'],
];
// Upstream derives this from the User role's list*/get* rules; with role types deciding for the
// User role here, the same reads are expressed by pattern, and a User-type role reaches only
// commands open to Users anyway.
const READ_ONLY_USER: Rule[] = READ_ONLY_ADMIN;
const SUPPORT_OPERATIONS = [
  'startVirtualMachine',
  'stopVirtualMachine',
  'rebootVirtualMachine',
  'createVolume',
  'attachVolume',
  'detachVolume',
  'uploadVolume',
  'attachIso',
  'detachIso',
  'registerTemplate',
  'registerIso',
];
const SUPPORT_ADMIN_OPERATIONS = [
  'prepareHostForMaintenance',
  'cancelHostMaintenance',
  'enableStorageMaintenance',
  'cancelStorageMaintenance',
  'createServiceOffering',
  'createDiskOffering',
  'createNetworkOffering',
  ...SUPPORT_OPERATIONS,
];
const allow = (names: string[]): Rule[] => names.map((name) => [name, 'allow']);
const DENY_REST: Rule = ['*', 'deny'];

export interface BuiltinRole {
  name: string;
  type: RoleType;
  description: string;
  rules: Rule[];
}

export const BUILTIN_ROLES: BuiltinRole[] = [
  { name: 'Root Admin', type: 'Admin', description: 'Default root admin role', rules: [['*', 'allow']] },
  { name: 'Resource Admin', type: 'ResourceAdmin', description: 'Default resource admin role', rules: [] },
  { name: 'Domain Admin', type: 'DomainAdmin', description: 'Default domain admin role', rules: [] },
  { name: 'User', type: 'User', description: 'Default user role', rules: [] },
  { name: 'Read-Only Admin - Default', type: 'Admin', description: 'Default read-only admin role', rules: [...READ_ONLY_ADMIN, DENY_REST] },
  { name: 'Read-Only User - Default', type: 'User', description: 'Default read-only user role', rules: [...READ_ONLY_USER, DENY_REST] },
  {
    name: 'Support Admin - Default',
    type: 'Admin',
    description: 'Default support admin role',
    rules: [...READ_ONLY_ADMIN.filter(([, p]) => p === 'allow'), ...allow(SUPPORT_ADMIN_OPERATIONS), DENY_REST],
  },
  {
    name: 'Support User - Default',
    type: 'User',
    description: 'Default support user role',
    rules: [...READ_ONLY_USER.filter(([, p]) => p === 'allow'), ...allow([...SUPPORT_OPERATIONS, 'getUploadParamsFor*']), DENY_REST],
  },
];
