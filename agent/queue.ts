// The agent's queue: short-lived credentials from the gateway (/credentials), refreshed before they
// expire, and an SQS client with the region and endpoint the gateway names. Nothing else about AWS
// is configured on the agent's machine.
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  ReceiveMessageCommand,
  SQSClient,
  type Message,
} from '@aws-sdk/client-sqs';
import type { z } from 'zod';
import type { credentialsResponse } from '../shared/agent/protocol.ts';
import type { Gateway } from './gateway.ts';

type Credentials = z.infer<typeof credentialsResponse>;

/** Refresh this long before the credentials expire (the SDK asks again within 5 minutes of expiry). */
const REFRESH_MARGIN_MS = 6 * 60_000;
// A poll abandoned when the agent stops can still take a message, which then stays hidden for the
// queue's visibility timeout: MOLD_AGENT_WAIT_SECONDS shortens the poll (tests stop agents often).
export const WAIT_TIME_SECONDS = Math.min(20, Math.max(1, Number(process.env.MOLD_AGENT_WAIT_SECONDS ?? 20)));

export class Queue {
  private readonly gateway: Gateway;
  private current: Credentials | undefined;
  private fetching: Promise<Credentials> | undefined;
  private client: SQSClient | undefined;
  queueUrl: string | undefined;

  constructor(gateway: Gateway) {
    this.gateway = gateway;
  }

  private async credentials(force = false): Promise<Credentials> {
    const c = this.current;
    if (!force && c && Date.parse(c.expiration) - Date.now() > REFRESH_MARGIN_MS) return c;
    this.fetching ??= this.gateway.credentials().finally(() => (this.fetching = undefined));
    this.current = await this.fetching;
    this.queueUrl = this.current.queueUrl;
    return this.current;
  }

  /** Fetches the first credentials and builds the client; call before anything else. */
  async open(): Promise<void> {
    const c = await this.credentials(true);
    this.client?.destroy();
    this.client = new SQSClient({
      region: c.region,
      ...(c.endpoint && { endpoint: c.endpoint }),
      credentials: async () => {
        const fresh = await this.credentials();
        return {
          accessKeyId: fresh.accessKeyId,
          secretAccessKey: fresh.secretAccessKey,
          sessionToken: fresh.sessionToken,
          expiration: new Date(fresh.expiration),
        };
      },
      maxAttempts: 2,
      // A long poll holds its request for up to WAIT_TIME_SECONDS; past that plus a margin the
      // connection is dead (a NAT dropped it, the queue's host vanished) and the next poll starts.
      requestHandler: { connectionTimeout: 10_000, requestTimeout: (WAIT_TIME_SECONDS + 15) * 1000 },
    });
  }

  /** The credentials expire at (ISO 8601). */
  get expiration(): string | undefined {
    return this.current?.expiration;
  }

  private sqs(): SQSClient {
    if (!this.client) throw new Error('the queue is not open');
    return this.client;
  }

  /** Long poll: returns as soon as a message arrives, or empty after WAIT_TIME_SECONDS. */
  async receive(max: number, signal?: AbortSignal, visibilitySeconds?: number): Promise<Message[]> {
    const r = await this.sqs().send(
      new ReceiveMessageCommand({
        QueueUrl: this.queueUrl,
        MaxNumberOfMessages: Math.max(1, Math.min(10, max)),
        WaitTimeSeconds: WAIT_TIME_SECONDS,
        ...(visibilitySeconds !== undefined && { VisibilityTimeout: visibilitySeconds }),
        MessageSystemAttributeNames: ['ApproximateReceiveCount'],
      }),
      { abortSignal: signal },
    );
    return r.Messages ?? [];
  }

  async delete(receiptHandle: string): Promise<void> {
    await this.sqs().send(new DeleteMessageCommand({ QueueUrl: this.queueUrl, ReceiptHandle: receiptHandle }));
  }

  async setVisibility(receiptHandle: string, seconds: number): Promise<void> {
    await this.sqs().send(new ChangeMessageVisibilityCommand({ QueueUrl: this.queueUrl, ReceiptHandle: receiptHandle, VisibilityTimeout: seconds }));
  }

  close() {
    this.client?.destroy();
  }
}
