import { actorFor, type Actor } from '../../shared/db/events.ts';
import type { Caller } from './command.ts';

export function actorOf(caller: Caller): Actor {
  return actorFor(caller.user, caller.account, caller.domain);
}
