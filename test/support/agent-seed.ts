// An agent record for tests that play the agent themselves: an RSA key and a self-signed
// certificate (so secrets can be sealed to it and opened with the key), and a real queue of the
// runtime's SQS emulator. Seeded through the repository layer after useRuntimeEndpoints().
import { CreateQueueCommand, DeleteMessageCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { SendTaskFailureCommand, SendTaskSuccessCommand } from '@aws-sdk/client-sfn';
import { randomUUID } from 'node:crypto';
import forge from 'node-forge';
import type { CommandMessage } from '../../shared/agent/protocol.ts';
import { sfn, sqs } from '../../shared/aws.ts';
import { createAgentRecord, type Agent } from '../../shared/db/agents.ts';
import { patience } from './wait.ts';

export interface SeededAgent {
  agent: Agent;
  privateKeyPem: string;
}

let keys: forge.pki.rsa.KeyPair | undefined;

export async function seedAgent(zoneId: string, fields: { name?: string; version?: string } = {}): Promise<SeededAgent> {
  // One key for all seeded agents of a test file: RSA key generation is slow.
  keys ??= forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
  const id = randomUUID();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = `01${randomUUID().replace(/-/g, '').slice(0, 16)}`;
  cert.validity.notBefore = new Date(Date.now() - 60_000);
  cert.validity.notAfter = new Date(Date.now() + 86_400_000);
  cert.setSubject([{ name: 'commonName', value: id }]);
  cert.setIssuer([{ name: 'commonName', value: 'test' }]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  const { QueueUrl } = await sqs().send(new CreateQueueCommand({ QueueName: `mold-agent-${id}` }));
  const agent = await createAgentRecord({
    id,
    name: fields.name ?? `agent-${id.slice(0, 8)}`,
    zoneId,
    certificate: forge.pki.certificateToPem(cert),
    certificateSerial: cert.serialNumber,
    certificateExpires: cert.validity.notAfter.toISOString(),
    sshPublicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBbqmcl6XJ2NwzEbvlS0ZLvp2sC7iObjXZz0p1o1oY2g test',
    queueUrl: QueueUrl!,
    version: fields.version ?? '0.1.0',
  });
  return { agent, privateKeyPem: forge.pki.privateKeyToPem(keys.privateKey) };
}

/** The next command on the agent's queue (deleted from it), waiting up to `quietMs` (stretched by SLACK). */
export async function receiveCommand(queueUrl: string, quietMs = 30_000): Promise<CommandMessage> {
  const deadline = Date.now() + patience(quietMs);
  while (Date.now() < deadline) {
    const { Messages = [] } = await sqs().send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 2, MaxNumberOfMessages: 1 }));
    if (Messages.length > 0) {
      await sqs().send(new DeleteMessageCommand({ QueueUrl: queueUrl, ReceiptHandle: Messages[0].ReceiptHandle }));
      return JSON.parse(Messages[0].Body!);
    }
  }
  throw new Error(`no command on ${queueUrl} within ${patience(quietMs)} ms`);
}

/** Answers a command as the agent's gateway would (SendTaskSuccess / SendTaskFailure). */
export async function answer(message: Pick<CommandMessage, 'taskToken'>, outcome: { result: unknown } | { error: string; cause: string }) {
  if ('result' in outcome) await sfn().send(new SendTaskSuccessCommand({ taskToken: message.taskToken, output: JSON.stringify(outcome.result) }));
  else await sfn().send(new SendTaskFailureCommand({ taskToken: message.taskToken, error: outcome.error, cause: outcome.cause }));
}

/**
 * An agent record only (no key, no queue), for tests and benchmarks that hand its reports to
 * recordReport themselves and never send it a command.
 */
export function reportingAgent(zoneId: string, name = `agent-${randomUUID().slice(0, 8)}`): Promise<Agent> {
  return createAgentRecord({
    id: randomUUID(),
    name,
    zoneId,
    certificate: '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n',
    certificateSerial: '01',
    certificateExpires: '2099-01-01T00:00:00+0000',
    sshPublicKey: 'ssh-ed25519 AAAA test',
    queueUrl: `http://127.0.0.1/queue/mold-agent-${randomUUID()}`,
    version: '0.1.0',
  });
}
