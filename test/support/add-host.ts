// addHost as its clients see it: upstream's synchronous answer, the host or the error. A lab host on a
// busy machine can take longer than the API's time limit; that answer names the job, which goes on,
// and this follows it as a careful client would.
import type { ApiClient } from './client.ts';

/** The outcome shaped as a finished job reads (jobstatus 1 with the answer, or 2 with the error), for tests written against jobs. */
export async function addHostAnswer(admin: ApiClient, params: Record<string, string | number | boolean>, quietMs = 90_000): Promise<{ jobstatus: number; jobresult: any }> {
  const answer = await admin.call('addHost', params, { method: 'POST' });
  const body = answer.body?.addhostresponse;
  if (answer.status === 200) return { jobstatus: 1, jobresult: body };
  const jobid = /its job (\S+) goes on/.exec(body?.errortext ?? '')?.[1];
  if (jobid) return admin.waitForJob(jobid, quietMs);
  return { jobstatus: 2, jobresult: body };
}
