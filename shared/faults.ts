// Fault points, for tests that prove what a crash leaves behind is repaired: MOLD_FAULTS names the
// points (comma-separated) at which the code throws an InjectedFault, as if the function had died
// there; `point:subject` only for that subject (a VM's name). Unset in every real deployment: a
// point then costs one string comparison.

/** A crash, injected: code that cleans up after an error lets this one through untouched. */
export class InjectedFault extends Error {}

/** Throws an InjectedFault when MOLD_FAULTS names `point` (or `point:subject`). */
export function faultPoint(point: string, subject?: string): void {
  const faults = process.env.MOLD_FAULTS;
  if (!faults) return;
  const named = faults.split(',');
  if (named.includes(point) || (subject !== undefined && named.includes(`${point}:${subject}`))) {
    throw new InjectedFault(`Fault injected at ${point} (MOLD_FAULTS)`);
  }
}
