// Secrets Mold hands to people: API keys, passwords, enrolment tokens. They are pasted into command
// lines, so none begins with '-': `mold-agent enrol --token -x…` would read it as an option.
import { randomBytes } from 'node:crypto';

/** `bytes` random bytes in the URL-safe alphabet, drawn again until the first character is a letter or digit. */
export function randomCredential(bytes = 48, random: (size: number) => Buffer = randomBytes): string {
  for (;;) {
    const credential = random(bytes).toString('base64url');
    if (/^[A-Za-z0-9]/.test(credential)) return credential;
  }
}
