// Runs on an EventBridge schedule (and on the local runtime's timer): reconciliation passes that no
// single request owns.
import middy from '@middy/core';
import { log } from '../../shared/log.ts';
import { failOrphanedJobs } from './jobs.ts';

async function sweep() {
  const orphanedJobs = await failOrphanedJobs();
  if (orphanedJobs.length > 0) log.info('failed orphaned jobs', { jobIds: orphanedJobs });
  return { orphanedJobs };
}

export const handler = middy().handler(sweep);
