// The data key that seals secrets at rest (API secret keys): a Secrets Manager secret encrypted
// with a customer-managed KMS key. Functions that seal or open secrets may read it.
import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { DATA_KEY_SECRET_VARIABLE } from '../../shared/crypto/secrets.ts';

export class Secrets extends Construct {
  readonly dataKey: Secret;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const key = new Key(this, 'Key', {
      description: 'Encrypts Mold secrets at rest',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.dataKey = new Secret(this, 'DataKey', {
      description: 'Mold data key: seals API secret keys stored in the inventory',
      encryptionKey: key,
      generateSecretString: { passwordLength: 64, excludePunctuation: true },
      // Losing it makes every stored API secret unreadable.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.dataKey).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason: 'Rotating the data key means re-sealing every stored API secret in the same step; it is a planned operation, not an automatic rotation.',
    });
  }

  /** Lets the function open and seal secrets. */
  grantDataKey(fn: IFunction & { addEnvironment(key: string, value: string): unknown }): void {
    this.dataKey.grantRead(fn);
    fn.addEnvironment(DATA_KEY_SECRET_VARIABLE, this.dataKey.secretArn);
  }
}
