import { createServer as createHttpServer, type RequestListener, type Server as HttpServer, type ServerOptions } from 'node:http';
import { createServer, type Server } from 'node:net';
import { LocalRuntimeError } from './errors.ts';

/**
 * An HTTP server for the local stand-ins. An idle keep-alive connection stays open longer than any
 * client keeps one (AWS's endpoints and load balancers keep them ~60 s; Node's default is 5 s). With
 * Node's 5 s, a client reusing a connection at the moment the server drops it gets ECONNRESET, which
 * on a busy machine, whose timers fire late, happens often enough to fail a test run.
 */
export function localServer(listener: RequestListener, options: ServerOptions = {}): HttpServer {
  const server = createHttpServer(options, listener);
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000; // above keepAliveTimeout, as Node requires
  return server;
}

/** A port the OS says is free now, for the stand-ins that need a fixed one (DynamoDB Local). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** Listens on the port, or explains in one line what to change when it is taken. */
export function listen(server: Server, port: number, host: string, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) => {
      reject(
        error.code === 'EADDRINUSE'
          ? new LocalRuntimeError(
              `Port ${port} is already in use (is Mold already running?). Stop the other process or set MOLD_PORT to a free port for the ${what}.`,
            )
          : error,
      );
    });
    server.listen(port, host, () => resolve((server.address() as { port: number }).port));
  });
}
