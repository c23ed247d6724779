/** A start-up problem the user can fix; main.ts prints its message alone, without a stack trace. */
export class LocalRuntimeError extends Error {}
