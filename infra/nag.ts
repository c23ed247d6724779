// cdk-nag 3 names each IAM5 finding after the wildcard resource as rendered in the template
// (e.g. `Resource::<TableABC.Arn>/index/*`), so an acknowledgement must spell it the same way.
// Rendering it from the token here keeps suppressions exact without hard-coding logical ids.
import { Stack, Validations } from 'aws-cdk-lib';
import type { IGrantable } from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';
import { flattenCfnReference } from 'cdk-nag/lib/utils/flatten-cfn-reference.js';

/** Acknowledges AwsSolutions-IAM5 for one wildcard `resource` granted to `grantee`. */
export function acknowledgeWildcard(grantee: IGrantable, resource: string, reason: string): void {
  const principal = grantee.grantPrincipal;
  if (!Construct.isConstruct(principal)) throw new Error('can only acknowledge findings on a role defined in this app');
  const rendered = flattenCfnReference(Stack.of(principal).resolve(resource));
  Validations.of(principal).acknowledge({ id: `AwsSolutions-IAM5[Resource::${rendered}]`, reason });
}
