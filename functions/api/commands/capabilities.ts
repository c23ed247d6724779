import { z } from 'zod';
import { InternalError } from '../../../shared/cloudstack/errors.ts';
import { describeParam, param } from '../../../shared/cloudstack/params.ts';
import { CLOUDSTACK_VERSION, listBody } from '../../../shared/cloudstack/render.ts';
import { ALL_ROLES, defineCommand, type AnyCommand } from '../command.ts';

/** Upstream's ListApisCmd throws ServerApiException(INTERNAL_ERROR, …): 530 with cserrorcode 9999. */

// Mold answers as the CloudStack release whose API it implements.
const listCapabilities = defineCommand({
  name: 'listCapabilities',
  description: 'Lists capabilities',
  params: {},
  roles: ALL_ROLES,
  handler: async ({ settings }) => ({
    body: {
      capability: {
        securitygroupsenabled: false,
        dynamicrolesenabled: true,
        cloudstackversion: CLOUDSTACK_VERSION,
        userpublictemplateenabled: true,
        supportELB: 'false',
        projectinviterequired: false,
        allowusercreateprojects: false,
        customdiskofferingminsize: 1,
        customdiskofferingmaxsize: 1024,
        regionsecondaryenabled: false,
        apilimitinterval: settings.number('api.throttling.interval'),
        kvmsnapshotenabled: false,
        apilimitmax: settings.number('api.throttling.max'),
        allowuserviewdestroyedvm: false,
        allowuserexpungerecovervm: false,
        allowuserexpungerecovervolume: false,
        allowuserviewalldomainaccounts: false,
        kubernetesserviceenabled: false,
        kubernetesclusterexperimentalfeaturesenabled: false,
        defaultuipagesize: 20,
        instancesstatsretentiontime: settings.number('vm.stats.max.retention.time'),
        instancesstatsuseronly: false,
        instancesdisksstatsretentionenabled: false,
        instancesdisksstatsretentiontime: 720,
        sharedfsvmmincpucount: 2,
        sharedfsvmminramsize: 1024,
      },
    },
  }),
});

/** The listApis entry of one command, derived from its definition. */
export function describeCommand(command: AnyCommand) {
  const params = Object.entries(command.params as Record<string, z.ZodType>).map(([name, schema]) => {
    const meta = describeParam(schema);
    return {
      name,
      description: meta.description,
      type: meta.cstype,
      length: meta.length ?? 255,
      required: meta.required,
      ...(meta.since && { since: meta.since }),
    };
  });
  return {
    name: command.name,
    description: command.description,
    ...(command.since && { since: command.since }),
    isasync: Boolean(command.isasync),
    params,
    response: [],
  };
}

const listApis = defineCommand({
  name: 'listApis',
  description: 'lists all available apis on the server, provided by the Api Discovery plugin',
  since: '4.1.0',
  params: { name: param.string('API name').optional() },
  roles: ALL_ROLES,
  handler: async ({ params, caller }) => {
    // Imported here: the registry imports this module.
    const { COMMANDS, mayCall } = await import('../registry.ts');
    // Every command the caller may call, login and logout included (upstream lists its
    // authenticator commands too).
    const visible = COMMANDS.filter((command) => mayCall(caller, command));
    const chosen = params.name ? visible.filter((command) => command.name === params.name) : visible;
    if (params.name && chosen.length === 0) throw new InternalError('Api Discovery plugin was unable to find an api by that name or process any apis', 9999);
    return { body: listBody('api', chosen.map(describeCommand)) };
  },
});

export const capabilityCommands = [listCapabilities, listApis];
