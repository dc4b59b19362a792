// Adoption on a live project: signups keep arriving while private.adopt_profile_table() runs. None
// of them fails, none is lost, and once the reconciler has run every user has exactly one profile
// in the app's table; users racing for one username end with one holder; of two operators adopting
// at once, one adopts and the other is told so.
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { migrateDatabase } from '../../dev/migrate.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';
import { asPostgres, installQuickstart, usersWithoutOneProfile } from './quickstart-project.ts';

const db = useTestDatabase('bare');

beforeAll(async () => {
  await installQuickstart(db());
  await migrateDatabase(db().url);
});

describe('adopting the quickstart table while users sign up', () => {
  it('fails no signup and leaves every user with exactly one profile', async () => {
    let stop = false;
    let started = 0;
    const failures: unknown[] = [];
    const racers = Array.from({ length: 4 }, async (_, racer) => {
      while (!stop) {
        const n = started++;
        try {
          await signUpAsSupabaseAuth(db(), {
            email: `racer-${racer}-${n}@example.test`,
            // Every fifth signup asks for the same username.
            userMetadata: {
              full_name: `Racer ${n}`,
              username: n % 5 === 0 ? 'wanted_name' : `racer_${n}`,
            },
          });
        } catch (error) {
          failures.push(error);
        }
      }
    });
    await sleep(300);
    // Two operators adopting at once: one adopts, the other is told it is done.
    const adopt = () =>
      asPostgres<{ r: { retired: boolean } }>(db(), 'select private.adopt_profile_table() as r');
    const settled = await Promise.allSettled([adopt(), adopt()]);
    expect(settled.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);
    const adopted = settled.find((o) => o.status === 'fulfilled') as PromiseFulfilledResult<
      Awaited<ReturnType<typeof adopt>>
    >;
    const refused = settled.find((o) => o.status === 'rejected') as PromiseRejectedResult;
    expect({ code: refused.reason.code, message: refused.reason.message }).toEqual({
      code: '22023',
      message: 'a profile table is already adopted: public.profiles',
    });
    await sleep(300);
    stop = true;
    await Promise.all(racers);

    expect(adopted.value.rows[0]!.r.retired).toBe(true);
    expect(failures).toEqual([]);
    expect(started).toBeGreaterThan(40);
    // A signup that raced the adoption may have been queued rather than served: the reconciler's
    // next runs finish it.
    for (let run = 0; run < 3; run++) await db().query('select public.reconcile_profiles()');
    expect(await usersWithoutOneProfile(db())).toEqual([]);
    const holders = await db().query(
      `select id from public.profiles where lower(username) = 'wanted_name'`,
    );
    expect(holders.rows).toHaveLength(1);
    const open = await db().one<{ n: number }>(
      'select count(*)::int as n from private.repair_queue where resolved_at is null',
    );
    expect(open.n).toBe(0);
  });
});
