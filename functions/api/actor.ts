import type { Actor } from '../../shared/db/events.ts';
import type { Caller } from './command.ts';

export function actorOf(caller: Caller): Actor {
  return {
    userId: caller.user.id,
    username: caller.user.username,
    accountId: caller.account.id,
    accountName: caller.account.name,
    domainId: caller.domain.id,
    domainName: caller.domain.name,
    domainPath: caller.domain.path,
    domainTree: caller.domain.tree,
  };
}
