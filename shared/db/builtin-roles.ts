// The eight roles every Mold starts with, as upstream ships them. Root Admin allows everything; the
// Resource Admin, Domain Admin and User roles carry no rules, so each command's own role types
// decide (upstream lists the same APIs rule by rule); the read-only and support roles allow reads
// and a few operations, and deny the rest (upstream's Upgrade41300to41400 and later upgrades, in
// upstream's order). Upstream derives the read-only and support User roles from the User role's
// list/get rules; here they carry the same patterns as the admin ones, and the registry's mayCall
// keeps a built-in User-type role's allow rules within the commands open to Users.
import type { RoleType } from './identity.ts';
import type { Permission } from './roles.ts';

type Rule = [rule: string, permission: Permission];

const allow = (names: string[]): Rule[] => names.map((name) => [name, 'allow']);
const DENY_REST: Rule = ['*', 'deny'];

const READS: Rule[] = [
  ['list*', 'allow'],
  ['getUploadParamsFor*', 'deny'],
  ['get*', 'allow'],
  ...allow(['cloudianIsEnabled', 'queryAsyncJobResult', 'quotaIsEnabled', 'quotaTariffList', 'quotaSummary', 'quotaStatement', 'quotaBalance']),
];
const TWO_FACTOR = allow(['setupUserTwoFactorAuthentication', 'validateUserTwoFactorAuthenticationCode']);
const READ_ONLY_ADMIN: Rule[] = [...READS, ...TWO_FACTOR];
const READ_ONLY_USER: Rule[] = [...READS, ...TWO_FACTOR];
const allows = (rules: Rule[]) => rules.filter(([, permission]) => permission === 'allow');

const SUPPORT_USER_OPERATIONS = [
  'startVirtualMachine',
  'stopVirtualMachine',
  'rebootVirtualMachine',
  'startKubernetesCluster',
  'stopKubernetesCluster',
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
  'createVPCOffering',
  ...SUPPORT_USER_OPERATIONS,
];

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
    rules: [...allows(READ_ONLY_ADMIN), ...allow(SUPPORT_ADMIN_OPERATIONS), DENY_REST],
  },
  {
    name: 'Support User - Default',
    type: 'User',
    description: 'Default support user role',
    rules: [...allows(READ_ONLY_USER), ...allow([...SUPPORT_USER_OPERATIONS, 'getUploadParamsFor*']), DENY_REST],
  },
];
