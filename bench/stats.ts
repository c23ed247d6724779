// What the API benchmarks share: signed calls through the HTTP server, timed, and their figures.
import { performance } from 'node:perf_hooks';
import { signature } from '../test/support/client.ts';
import type { RunningRuntime } from '../test/support/runtime.ts';

/** The nearest-rank percentile of ascending `sorted`. */
export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** The signed URL of one call as the root admin (the same parameters each time, so one signature serves all). */
export function signedUrl(runtime: RunningRuntime, command: string, params: Record<string, string>): string {
  const pairs: [string, string][] = [['command', command], ...Object.entries(params), ['response', 'json'], ['apiKey', runtime.credentials.apikey]];
  pairs.push(['signature', signature(pairs, runtime.credentials.secretkey)]);
  return `${runtime.apiUrl}?${pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&')}`;
}

export async function timedCall(url: string): Promise<{ ms: number; status: number; bytes: number; body: string }> {
  const started = performance.now();
  const response = await fetch(url);
  const body = await response.text();
  return { ms: performance.now() - started, status: response.status, bytes: Buffer.byteLength(body), body };
}

export interface CaseResult {
  clients: number;
  requests: number;
  p50: number;
  p99: number;
  max: number;
  perSecond: number;
}

/** `requests` calls shared among `clients` concurrent loops, cycling over `urls`; every answer must be a 200. */
export async function runCase(urls: string[], clients: number, requests: number): Promise<CaseResult> {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async () => {
      while (next < requests) {
        const url = urls[next++ % urls.length]!;
        const { ms, status, body } = await timedCall(url);
        if (status !== 200) throw new Error(`HTTP ${status}: ${body.slice(0, 300)}`);
        latencies.push(ms);
      }
    }),
  );
  const elapsed = performance.now() - started;
  latencies.sort((a, b) => a - b);
  return { clients, requests, p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies[latencies.length - 1]!, perSecond: (requests / elapsed) * 1000 };
}
