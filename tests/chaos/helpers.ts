// Shared pieces of the reliability-under-faults suite: bounded waits, worker pools, env counts,
// and the SQL that states the profile invariants.
import type pg from 'pg';

/** A positive integer from the environment, or the default (heavy variants scale through these). */
export function envCount(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`${name} must be a positive integer (got ${raw})`);
  }
  return value;
}

export class Hung extends Error {
  constructor(label: string, ms: number) {
    super(`${label} did not finish within ${ms} ms`);
    this.name = 'Hung';
  }
}

/** The promise's outcome, or a Hung rejection after ms: nothing in this suite may wait forever. */
export async function within<T>(ms: number, label: string, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Hung(label, ms)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Runs `task(i)` for i in [0, count) on `workers` concurrent loops; results in index order. */
export async function pool<T>(
  count: number,
  workers: number,
  task: (i: number, worker: number) => Promise<T>,
): Promise<T[]> {
  const results = new Array<T>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(workers, count) }, async (_, worker) => {
      for (let i = next++; i < count; i = next++) results[i] = await task(i, worker);
    }),
  );
  return results;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Auth users (optionally only those with the given email prefix) that have no profile. */
export async function usersWithoutProfile(
  db: pg.Pool | pg.Client,
  emailLike = '%',
): Promise<string[]> {
  const { rows } = await db.query<{ id: string }>(
    `select u.id from auth.users u
     where u.email like $1 and not exists (select 1 from public.user_profiles p where p.user_id = u.id)
     order by u.id`,
    [emailLike],
  );
  return rows.map((r) => r.id);
}

/** Emails held by more than one auth user, case-insensitively. */
export async function duplicateEmails(db: pg.Pool | pg.Client): Promise<string[]> {
  const { rows } = await db.query<{ email: string }>(
    `select lower(email) as email from auth.users where email is not null group by lower(email) having count(*) > 1`,
  );
  return rows.map((r) => r.email);
}

/** Repair-queue entries still open. */
export async function openRepairs(db: pg.Pool | pg.Client): Promise<string[]> {
  const { rows } = await db.query<{ user_id: string }>(
    'select user_id from private.repair_queue where resolved_at is null order by user_id',
  );
  return rows.map((r) => r.user_id);
}
