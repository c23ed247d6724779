// Mold's one error taxonomy. Every failure a caller can see is one of these classes, and
// `toErrorResponse` in render.ts is the only place that turns them into CloudStack's envelope.
// `errorcode` is upstream's ApiErrorCode (and the HTTP status); `cserrorcode` is the number
// upstream's CSExceptionErrorCode gives the exception class it would have thrown.

export class CloudStackError extends Error {
  readonly errorcode: number;
  readonly cserrorcode: number | undefined;

  constructor(errorcode: number, errortext: string, cserrorcode?: number) {
    super(errortext);
    this.name = new.target.name;
    this.errorcode = errorcode;
    this.cserrorcode = cserrorcode;
  }
}

/** 401: bad credentials, bad signature, expired request or session. Upstream sends no cserrorcode. */
export class Unauthenticated extends CloudStackError {
  constructor(text = 'unable to verify user credentials and/or request signature') {
    super(401, text);
  }
}

/** 405: the HTTP method is not allowed for this command. */
export class MethodNotAllowed extends CloudStackError {
  constructor(text: string) {
    super(405, text, 9999);
  }
}

/** 429: API throttling. */
export class ApiLimitExceeded extends CloudStackError {
  constructor(text: string) {
    super(429, text, 9999);
  }
}

/** 430: a parameter that cannot be parsed at all. */
export class MalformedParameter extends CloudStackError {
  constructor(text: string) {
    super(430, text, 9999);
  }
}

/**
 * 431: a missing or invalid parameter value (upstream's InvalidParameterValueException, 4350; pass
 * 9999 where upstream throws ServerApiException(PARAM_ERROR) instead).
 */
export class InvalidParameter extends CloudStackError {
  constructor(text: string, cserrorcode = 4350) {
    super(431, text, cserrorcode);
  }
}

/** 432: unknown command, or one the caller's role may not call: upstream answers both alike. */
export class UnsupportedAction extends CloudStackError {
  constructor(text = 'The given command does not exist or it is not available for user') {
    super(432, text, 9999);
  }
}

/**
 * 530: something went wrong on our side, or upstream's ServerApiException(INTERNAL_ERROR) (pass
 * 9999 for that). The text never carries a stack trace.
 */
export class InternalError extends CloudStackError {
  constructor(text = 'Internal error executing command, please contact your system administrator', cserrorcode = 4250) {
    super(530, text, cserrorcode);
  }
}

/** 531 without a cserrorcode: a failed login (upstream's CloudAuthenticationException). */
export class AuthenticationFailed extends CloudStackError {
  constructor(text: string) {
    super(531, text);
  }
}

/** 531: the caller may not act on this account's resource (upstream's PermissionDeniedException). */
export class PermissionDenied extends CloudStackError {
  constructor(text: string) {
    super(531, text, 4365);
  }
}

/** 532: an account or domain resource limit would be exceeded. */
export class ResourceLimitExceeded extends CloudStackError {
  constructor(text: string) {
    super(532, text, 4370);
  }
}

/** 533: no host, pool or address has room. */
export class InsufficientCapacity extends CloudStackError {
  constructor(text: string, cserrorcode = 4325) {
    super(533, text, cserrorcode);
  }
}

/** 534: a resource the operation needs is unavailable. */
export class ResourceUnavailable extends CloudStackError {
  constructor(text: string) {
    super(534, text, 4380);
  }
}

/** 535: a resource could not be allocated. */
export class ResourceAllocationFailed extends CloudStackError {
  constructor(text: string) {
    super(535, text, 4370);
  }
}

/** 536: the resource is in use (deleting something that still contains things). */
export class ResourceInUse extends CloudStackError {
  constructor(text: string) {
    super(536, text, 4375);
  }
}

/** 537: a network rule conflicts with an existing one. */
export class NetworkRuleConflict extends CloudStackError {
  constructor(text: string) {
    super(537, text, 4360);
  }
}

const BY_NAME: Record<string, new (text: string) => CloudStackError> = {
  Unauthenticated,
  MethodNotAllowed,
  ApiLimitExceeded,
  MalformedParameter,
  InvalidParameter,
  UnsupportedAction,
  InternalError,
  PermissionDenied,
  AuthenticationFailed,
  ResourceLimitExceeded,
  InsufficientCapacity,
  ResourceUnavailable,
  ResourceAllocationFailed,
  ResourceInUse,
  NetworkRuleConflict,
};

/**
 * The CloudStack error a Task failure stands for: a task that threw one of these classes fails its
 * state with the class name as Error (how Step Functions reports a Lambda error), and the job ends
 * with the same errorcode and text as a synchronous command would.
 */
export function errorFromName(name: string, text: string): CloudStackError | undefined {
  const ErrorClass = BY_NAME[name];
  return ErrorClass ? new ErrorClass(text) : undefined;
}

/**
 * The CloudStack error a failed job's errorcode stands for (the first class with that code), so that a
 * command which waits for its job (addHost) answers as if it had thrown the error itself.
 */
export function errorFromCode(errorcode: number, text: string): CloudStackError {
  for (const ErrorClass of Object.values(BY_NAME)) {
    const error = new ErrorClass(text);
    if (error.errorcode === errorcode) return error;
  }
  return new CloudStackError(errorcode, text);
}
