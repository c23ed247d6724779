// A command's failure as the control plane sees it: `name` becomes SendTaskFailure's error and the
// message its cause, which the job shows as its errortext. So the message names the cause and the
// host, in words an operator can act on.
export class CommandFailure extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

export const failures = {
  authenticationFailed: (who: string, how: 'password' | 'key') =>
    new CommandFailure(
      'AuthenticationFailed',
      how === 'password'
        ? `Authentication failed for ${who}: wrong username or password`
        : `Authentication failed for ${who}: the agent's SSH key is not authorized there (give the password, or add the agent's public key to the user's ~/.ssh/authorized_keys)`,
    ),
  hostUnreachable: (where: string, why: string) => new CommandFailure('HostUnreachable', `Cannot reach ${where}: ${why}`),
  hostKeyMismatch: (where: string, expected: string, got: string) =>
    new CommandFailure(
      'HostKeyMismatch',
      `The SSH host key of ${where} has changed (pinned ${expected}, offered ${got}); if the host was reinstalled, add it again`,
    ),
  noLibvirt: (who: string, why: string) => new CommandFailure('NoLibvirt', `No usable libvirt on ${who}: ${why}`),
  timeout: (who: string, what: string, ms: number) => new CommandFailure('Timeout', `${what} on ${who} did not finish within ${Math.round(ms / 1000)} s`),
  expired: (commandId: string, deadline: string) =>
    new CommandFailure('Expired', `Command ${commandId} reached the agent after its deadline (${deadline}); it was not run`),
};
