// A bound on waiting, for checks that something is answered at all while the machine is busy: not a
// measurement (the benchmarks in bench/ measure).

/** Resolves with the answer, or with 'late' when `ceilingMs` passes first. */
export function within<T>(answer: Promise<T>, ceilingMs: number): Promise<T | 'late'> {
  let timer: NodeJS.Timeout;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ceilingMs)));
  return Promise.race([answer, late]).finally(() => clearTimeout(timer));
}
