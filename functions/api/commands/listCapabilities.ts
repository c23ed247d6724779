import { z } from 'zod';
import { CLOUDSTACK_VERSION } from '../../../shared/cloudstack/render.ts';
import { defineCommand } from '../command.ts';

// Mold answers as the CloudStack release whose API it implements. Values that depend on settings
// (page size, API limits) are upstream's defaults until the configuration catalogue exists.
export const listCapabilities = defineCommand({
  name: 'listCapabilities',
  description: 'Lists capabilities',
  params: z.object({}),
  handler: async () => ({
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
      apilimitinterval: 1,
      kvmsnapshotenabled: false,
      apilimitmax: 25,
      allowuserviewdestroyedvm: false,
      allowuserexpungerecovervm: false,
      allowuserexpungerecovervolume: false,
      allowuserviewalldomainaccounts: false,
      kubernetesserviceenabled: false,
      kubernetesclusterexperimentalfeaturesenabled: false,
      defaultuipagesize: 20,
      instancesstatsretentiontime: 720,
      instancesstatsuseronly: false,
      instancesdisksstatsretentionenabled: false,
      instancesdisksstatsretentiontime: 720,
      sharedfsvmmincpucount: 2,
      sharedfsvmminramsize: 1024,
    },
  }),
});
