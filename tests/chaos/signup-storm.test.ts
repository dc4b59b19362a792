// A signup storm through the Auth stand-in's HTTP API while a hostile trigger makes ~10 % of
// profile inserts fail. Signups must never fail with them; the audit and the repair queue must
// name every failure, and one reconcile must finish the job.
//   CHAOS_SIGNUPS      signups in the storm (default 2000, the minimum)
//   CHAOS_CONCURRENCY  concurrent workers, each on its own client connection (default 16)
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ReconcileBatch } from '../../shared/rpc-results.ts';
import { appClient } from '../helpers/clients.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';
import { envCount, pool, within } from './helpers.ts';

const SIGNUPS = envCount('CHAOS_SIGNUPS', 2000);
const CONCURRENCY = envCount('CHAOS_CONCURRENCY', 16);

const db = useTestDatabase();
const api = useLocalApi(db);

const HOSTILE = `
  create function public.chaos_hostile_profile_insert() returns trigger language plpgsql as $$
  begin
    raise exception 'chaos: injected profile failure for %', new.user_id using errcode = 'P0001';
  end $$;
  create trigger chaos_hostile_profile_insert before insert on public.user_profiles
    for each row when (hashtext(new.user_id::text) % 10 = 0)
    execute function public.chaos_hostile_profile_insert();`;
const HOSTILE_DROP = `
  drop trigger if exists chaos_hostile_profile_insert on public.user_profiles;
  drop function if exists public.chaos_hostile_profile_insert();`;

describe('a signup storm while one profile insert in ten fails', () => {
  it(
    `${SIGNUPS} signups over ${CONCURRENCY} concurrent connections all succeed, every failure is audited and queued, and one reconcile leaves every user with exactly one profile`,
    async () => {
      const run = randomUUID().slice(0, 8);
      const prefix = `storm-${run}-`;
      const baseline =
        (await db().one<{ n: number }>('select count(*)::int as n from auth.users')).n;
      const { apiUrl, keys } = api().stack;

      await db().query(HOSTILE);
      let outcomes: Array<{ id: string | null; error: string | null }>;
      try {
        // One client per worker; even workers sign up as an app does, odd ones through the admin API.
        const clients = Array.from(
          { length: CONCURRENCY },
          (_, w) => appClient(apiUrl, w % 2 === 0 ? keys.anonKey : keys.serviceRoleKey),
        );
        outcomes = await within(
          150_000,
          'the storm',
          pool(SIGNUPS, CONCURRENCY, async (i, w) => {
            const email = `${prefix}${i}@example.test`;
            const password = `pw-${run}-${i}`;
            const client = clients[w]!;
            const { data, error } = w % 2 === 0
              ? await client.auth.signUp({
                email,
                password,
                options: { data: { full_name: `Storm ${i}` } },
              })
              : await client.auth.admin.createUser({
                email,
                password,
                email_confirm: true,
                user_metadata: { full_name: `Storm ${i}` },
              });
            return {
              id: data.user?.id ?? null,
              error: error ? `${error.status} ${error.code}: ${error.message}` : null,
            };
          }),
        );
      } finally {
        await db().query(HOSTILE_DROP);
      }

      // Every signup succeeded, each with a user of its own.
      expect(outcomes.filter((o) => o.error !== null || o.id === null)).toEqual([]);
      const ids = outcomes.map((o) => o.id!);
      expect(new Set(ids).size).toBe(SIGNUPS);
      expect((await db().one<{ n: number }>('select count(*)::int as n from auth.users')).n).toBe(
        baseline + SIGNUPS,
      );

      // The failures the hostile trigger chose, computed independently of the product's records.
      const { rows: doomedRows } = await db().query<{ id: string }>(
        `select id from auth.users where email like $1 and hashtext(id::text) % 10 = 0 order by id`,
        [`${prefix}%`],
      );
      const doomed = doomedRows.map((r) => r.id);
      expect(doomed.length).toBeGreaterThan(SIGNUPS * 0.05);
      expect(doomed.length).toBeLessThan(SIGNUPS * 0.15);

      // Before the reconcile: exactly the doomed users lack a profile, each with one failed trigger
      // audit row naming the error and one open queue entry.
      const { rows: missing } = await db().query<{ id: string }>(
        `select u.id from auth.users u where u.email like $1
         and not exists (select 1 from public.user_profiles p where p.user_id = u.id) order by u.id`,
        [`${prefix}%`],
      );
      expect(missing.map((r) => r.id)).toEqual(doomed);
      const { rows: failedAudit } = await db().query<
        { user_id: string; n: number; sqlstates: string[]; messages_ok: boolean }
      >(
        `select a.user_id, count(*)::int as n, array_agg(distinct a.sqlstate) as sqlstates,
              bool_and(a.message = 'chaos: injected profile failure for ' || a.user_id) as messages_ok
       from private.audit_logs a join auth.users u on u.id = a.user_id
       where u.email like $1 and a.outcome = 'failed'
       group by a.user_id order by a.user_id`,
        [`${prefix}%`],
      );
      expect(failedAudit).toEqual(
        doomed.map((id) => ({ user_id: id, n: 1, sqlstates: ['P0001'], messages_ok: true })),
      );
      expect(
        (await db().one<{ n: number }>(
          `select count(*)::int as n from private.audit_logs a join auth.users u on u.id = a.user_id
       where u.email like $1 and a.outcome = 'failed' and a.source <> 'trigger'`,
          [`${prefix}%`],
        )).n,
      ).toBe(0);
      const { rows: queued } = await db().query<
        { user_id: string; source: string; sqlstate: string; attempts: number; open: boolean }
      >(
        `select q.user_id, q.source, q.sqlstate, q.attempts, q.resolved_at is null as open
       from private.repair_queue q join auth.users u on u.id = q.user_id
       where u.email like $1 order by q.user_id`,
        [`${prefix}%`],
      );
      expect(queued).toEqual(
        doomed.map((id) => ({
          user_id: id,
          source: 'trigger',
          sqlstate: 'P0001',
          attempts: 1,
          open: true,
        })),
      );
      // The others got theirs from the trigger, inside Auth's transaction.
      expect(
        (await db().one<{ n: number }>(
          `select count(*)::int as n from public.user_profiles p join auth.users u on u.id = p.user_id
       where u.email like $1 and p.created_via = 'trigger'`,
          [`${prefix}%`],
        )).n,
      ).toBe(SIGNUPS - doomed.length);

      // One reconcile, with the hostile trigger gone.
      const summary =
        (await db().one<{ s: ReconcileBatch }>('select public.reconcile_profiles(10000) as s')).s;
      expect(summary).toMatchObject({
        ran: true,
        queue: { due: doomed.length, repaired: doomed.length, failed: 0, user_deleted: 0 },
        sweep: { missing: 0, created: 0, failed: 0 },
      });

      // Every auth user has exactly one profile, and every failure is accounted for and resolved.
      const { rows: perUser } = await db().query<{ profiles: number; n: number }>(
        `select coalesce(p.n, 0) as profiles, count(*)::int as n
       from auth.users u left join (select user_id, count(*)::int as n from public.user_profiles group by user_id) p on p.user_id = u.id
       group by 1 order by 1`,
      );
      expect(perUser).toEqual([{ profiles: 1, n: baseline + SIGNUPS }]);
      const { rows: repaired } = await db().query<
        { user_id: string; resolution: string; created_via: string; reconcile_created: number }
      >(
        `select q.user_id, q.resolution, p.created_via,
              (select count(*)::int from private.audit_logs a
               where a.user_id = q.user_id and a.source = 'reconcile' and a.outcome = 'created') as reconcile_created
       from private.repair_queue q join auth.users u on u.id = q.user_id join public.user_profiles p on p.user_id = q.user_id
       where u.email like $1 and q.resolved_at is not null order by q.user_id`,
        [`${prefix}%`],
      );
      expect(repaired).toEqual(
        doomed.map((id) => ({
          user_id: id,
          resolution: 'reconcile',
          created_via: 'backfill',
          reconcile_created: 1,
        })),
      );
      // The repaired profiles carry the signup's metadata, as the trigger would have.
      expect(
        (await db().one<{ n: number }>(
          `select count(*)::int as n from public.user_profiles p join auth.users u on u.id = p.user_id
       where u.email like $1 and p.full_name = u.raw_user_meta_data ->> 'full_name' and p.email = u.email`,
          [`${prefix}%`],
        )).n,
      ).toBe(SIGNUPS);
    },
    240_000,
  );
});
