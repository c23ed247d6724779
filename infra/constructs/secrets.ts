// The data key that seals secrets at rest (API secret keys) and Mold's CA (the key and certificate that
// sign agents' client certificates): Secrets Manager secrets encrypted with a customer-managed KMS key.
// Functions that seal or open secrets may read the data key; the agent gateway, the CA.
import { RemovalPolicy, Validations } from 'aws-cdk-lib';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { CA_SECRET_VARIABLE } from '../../shared/crypto/ca.ts';
import { DATA_KEY_SECRET_VARIABLE } from '../../shared/crypto/secrets.ts';

export class Secrets extends Construct {
  readonly dataKey: Secret;
  /** Holds a random placeholder until `npm run bootstrap` puts a CA in it. */
  readonly agentCa: Secret;

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
    this.agentCa = new Secret(this, 'AgentCa', {
      description: "Mold's agent CA: the key and certificate that sign on-prem agents' client certificates",
      encryptionKey: key,
      // Losing it strands every enrolled agent.
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(this.agentCa).acknowledge({
      id: 'AwsSolutions-SMG4',
      reason: 'A new CA key invalidates every agent certificate, so it is replaced together with re-enrolling the agents, not rotated automatically.',
    });
  }

  /** Lets the function sign agent certificates and check them against the CA. */
  grantAgentCa(fn: IFunction & { addEnvironment(key: string, value: string): unknown }): void {
    this.agentCa.grantRead(fn);
    fn.addEnvironment(CA_SECRET_VARIABLE, this.agentCa.secretArn);
  }

  /** Lets the function open and seal secrets. */
  grantDataKey(fn: IFunction & { addEnvironment(key: string, value: string): unknown }): void {
    this.dataKey.grantRead(fn);
    fn.addEnvironment(DATA_KEY_SECRET_VARIABLE, this.dataKey.secretArn);
  }
}
