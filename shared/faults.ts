// Fault points, for tests that prove what a crash leaves behind is repaired: MOLD_FAULTS names the
// points (comma-separated) at which the code throws, as if the function had died there. Unset in
// every real deployment: a point then costs one string comparison.

/** Throws when MOLD_FAULTS names `point`. */
export function faultPoint(point: string): void {
  const faults = process.env.MOLD_FAULTS;
  if (faults && faults.split(',').includes(point)) throw new Error(`Fault injected at ${point} (MOLD_FAULTS)`);
}
