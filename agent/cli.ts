#!/usr/bin/env node
// mold-agent: the on-prem agent that runs Mold's commands on KVM hosts over SSH.
//   mold-agent enrol --url <api base> --token <token> [--dir <state dir>] [--name <name>] [--force]
//   mold-agent run [--dir <state dir>] [--console-listen <ip:port> [--console-url <ws(s) URL>] [--console-cert <pem> --console-key <pem>]]
//   mold-agent status [--dir <state dir>] [--json] [--local]
// The state directory defaults to $MOLD_AGENT_DIR, else /var/lib/mold-agent.
import { X509Certificate } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { errorText, log } from './log.ts';
import { agentVersion, defaultDir, FILES, loadState } from './state.ts';
import type { FleetResponse } from '../shared/agent/protocol.ts';

const USAGE = `Usage:
  mold-agent enrol --url <api base URL> --token <enrolment token> [--dir <state dir>] [--name <name>] [--force]
  mold-agent run [--dir <state dir>] [--console-listen <ip:port> [--console-url <ws(s) URL>] [--console-cert <pem file> --console-key <pem file>]]
  mold-agent status [--dir <state dir>] [--json] [--local]

The state directory defaults to $MOLD_AGENT_DIR, else /var/lib/mold-agent.
status prints this agent's own state, then its zone's agents and hosts as the control plane sees them
(--local: only what the state directory holds, without asking the control plane).
--console-listen (or $MOLD_AGENT_CONSOLE_LISTEN) runs the VM console proxy on that address (one
interface's, not a wildcard); --console-url (or $MOLD_AGENT_CONSOLE_URL) is the URL users' browsers
reach it at (default ws://<ip:port>/websockify, wss:// with --console-cert/--console-key).`;

function fail(message: string, code = 1): never {
  process.stderr.write(`mold-agent: ${message}\n`);
  process.exit(code);
}

async function main(argv: string[]) {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (command === '--version' || command === 'version') {
    process.stdout.write(`${agentVersion()}\n`);
    return;
  }
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        url: { type: 'string' },
        token: { type: 'string' },
        dir: { type: 'string' },
        name: { type: 'string' },
        force: { type: 'boolean' },
        json: { type: 'boolean' },
        local: { type: 'boolean' },
        'console-listen': { type: 'string' },
        'console-url': { type: 'string' },
        'console-cert': { type: 'string' },
        'console-key': { type: 'string' },
      },
      strict: true,
    }));
  } catch (err) {
    fail(`${errorText(err)}\n${USAGE}`, 2);
  }
  const dir = (values.dir as string | undefined) ?? defaultDir();

  switch (command) {
    case 'enrol':
    case 'enroll': {
      const url = values.url as string | undefined;
      const token = values.token as string | undefined;
      if (!url || !token) fail(`enrol needs --url and --token\n${USAGE}`, 2);
      const started = performance.now();
      // Each command loads only what it uses: enrol and status start faster without the AWS SDK.
      const { enrolAgent } = await import('./enrol.ts');
      const state = await enrolAgent({ url, token, dir, name: values.name as string | undefined, force: values.force === true });
      process.stdout.write(
        `${JSON.stringify({
          message: 'enrolled',
          agentId: state.config.agentId,
          zoneId: state.config.zoneId,
          queueUrl: state.config.queueUrl,
          dir,
          sshPublicKey: state.sshPublicKey,
          ms: Math.round(performance.now() - started),
        })}\n`,
      );
      return;
    }
    case 'run': {
      const consoleModule = await import('./console.ts');
      const listen = (values['console-listen'] as string | undefined) ?? process.env.MOLD_AGENT_CONSOLE_LISTEN;
      const consoleUrl = (values['console-url'] as string | undefined) ?? process.env.MOLD_AGENT_CONSOLE_URL;
      if (!listen && (consoleUrl || values['console-cert'] || values['console-key'])) fail('--console-url, --console-cert and --console-key need --console-listen', 2);
      let consoleOptions: { listen: { host: string; port: number }; url?: string; tls?: { certificate: string; privateKey: string } } | undefined;
      try {
        if (listen) {
          consoleOptions = {
            listen: consoleModule.parseListen(listen),
            ...(consoleUrl && { url: consoleModule.checkConsoleUrl(consoleUrl) }),
            tls: consoleModule.readTls(values['console-cert'] as string | undefined, values['console-key'] as string | undefined),
          };
        }
      } catch (err) {
        fail(errorText(err), 2);
      }
      const state = await loadState(dir);
      const { AgentRunner } = await import('./runner.ts');
      const runner = await AgentRunner.create(state, { console: consoleOptions });
      let signals = 0;
      const onSignal = (signal: string) => {
        if (++signals > 1) process.exit(130);
        log.info('signal', { signal });
        void runner.stop();
      };
      process.on('SIGTERM', () => onSignal('SIGTERM'));
      process.on('SIGINT', () => onSignal('SIGINT'));
      await runner.start();
      process.exit(await runner.stopped);
    }
    case 'status': {
      const state = await loadState(dir);
      const [{ Journal }, { KnownHosts }] = await Promise.all([import('./journal.ts'), import('./ssh.ts')]);
      const journal = await Journal.open(join(dir, FILES.journal));
      const knownHosts = await KnownHosts.open(join(dir, FILES.knownHosts));
      const cert = new X509Certificate(state.certificatePem);
      const status = {
        agentId: state.config.agentId,
        name: state.config.name,
        zoneId: state.config.zoneId,
        url: state.config.url,
        queueUrl: state.config.queueUrl,
        enrolled: state.config.enrolled,
        certificateSerial: cert.serialNumber,
        certificateExpires: new Date(cert.validTo).toISOString(),
        sshPublicKey: state.sshPublicKey,
        journalEntries: journal.size,
        pinnedHostKeys: knownHosts.size,
        version: agentVersion(),
        dir,
      };
      // The zone as the control plane sees it; the agent's own state is printed even when that fails.
      let fleet: FleetResponse | undefined;
      let fleetError: string | undefined;
      if (!values.local) {
        try {
          const { gateway } = await import('./gateway.ts');
          fleet = await gateway(state.config.url, state.config.agentId, state.privateKeyPem).fleet();
        } catch (err) {
          fleetError = errorText(err);
        }
      }
      if (values.json) {
        process.stdout.write(`${JSON.stringify({ ...status, ...(fleet && { fleet }), ...(fleetError && { fleetError }) }, null, 2)}\n`);
        if (fleetError) process.exitCode = 1;
        return;
      }
      const lines = [
        `Agent:         ${status.agentId}${status.name ? ` (${status.name})` : ''}`,
        `Zone:          ${status.zoneId}`,
        `Control plane: ${status.url}`,
        `Queue:         ${status.queueUrl}`,
        `Certificate:   serial ${status.certificateSerial}, expires ${status.certificateExpires}`,
        `Journal:       ${status.journalEntries} command result(s)`,
        `Host keys:     ${status.pinnedHostKeys} pinned`,
        `Version:       ${status.version}`,
        `State dir:     ${dir}`,
        '',
        'SSH public key (add it to a host\'s ~/.ssh/authorized_keys to add the host without a password):',
        status.sshPublicKey,
        ...(fleet ? ['', ...(await import('./fleet-view.ts')).fleetLines(fleet, status.agentId)] : []),
      ];
      process.stdout.write(`${lines.join('\n')}\n`);
      if (fleetError) {
        process.stderr.write(`mold-agent: cannot show the zone: ${fleetError}\n`);
        process.exitCode = 1;
      }
      return;
    }
    default:
      fail(`unknown command ${command}\n${USAGE}`, 2);
  }
}

main(process.argv.slice(2)).catch((err) => fail(errorText(err)));
