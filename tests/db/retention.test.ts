import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../helpers/database.ts';

const db = useTestDatabase();
const prune = async (batch = 10000) =>
  (await db().one('select public.prune_audit_logs($1) as r', [batch])).r;
const count = async (sql: string) =>
  (await db().one<{ n: number }>(`select count(*)::int as n from ${sql}`)).n;

describe('prune_audit_logs', () => {
  it('deletes audit rows, resolved queue entries and delivered alerts past the retention, and keeps the rest', async () => {
    await db().query(
      `delete from private.audit_logs; delete from private.repair_queue; delete from private.alert_deliveries`,
    );
    await db().query(`
      insert into private.audit_logs (occurred_at, operation, source, outcome)
      select now() - make_interval(days => d), 'ensure_profile', 'trigger', 'created' from generate_series(1, 120) d;
      insert into private.repair_queue (user_id, source, reason, resolved_at, resolution)
      values (gen_random_uuid(), 'trigger', 'old', now() - interval '100 days', 'backfill'),
             (gen_random_uuid(), 'trigger', 'recent', now() - interval '1 day', 'backfill'),
             (gen_random_uuid(), 'trigger', 'open for long', null, null);
      update private.repair_queue set first_failed_at = now() - interval '200 days' where reason = 'open for long';
      insert into private.alert_deliveries (alert, state, payload, delivered_at)
      values ('x', 'firing', '{}', now() - interval '95 days'), ('x', 'resolved', '{}', now() - interval '2 days'),
             ('y', 'firing', '{}', null);`);
    const result = await prune();
    // Days 90..120: the day-90 row was written a moment before this call's now(), so it is past too.
    expect(result).toMatchObject({
      audit_logs: 31,
      repair_queue: 1,
      alert_deliveries: 1,
      done: true,
    });
    expect(await count(`private.audit_logs`)).toBe(89);
    expect(await count(`private.audit_logs where occurred_at < now() - interval '90 days'`)).toBe(
      0,
    );
    // Open entries are never pruned, however old: they are work still to do.
    expect(
      (await db().query(`select reason from private.repair_queue order by reason`)).rows.map((r) =>
        r.reason
      ),
    ).toEqual([
      'open for long',
      'recent',
    ]);
    expect(await count(`private.alert_deliveries`)).toBe(2);
  });

  it('works in bounded batches until done, following the retention setting', async () => {
    await db().query(`delete from private.audit_logs`);
    await db().query(`insert into private.audit_logs (occurred_at, operation, source, outcome)
                      select now() - interval '10 days' - make_interval(secs => n), 'ensure_profile', 'trigger', 'existed'
                      from generate_series(1, 2500) n`);
    expect(await prune()).toMatchObject({ audit_logs: 0, done: true });
    await db().query(`update private.settings set audit_retention = interval '7 days'`);
    try {
      const batches = [];
      for (;;) {
        const r = await prune(1000);
        batches.push(r.audit_logs);
        if (r.done) break;
      }
      expect(batches).toEqual([1000, 1000, 500]);
      expect(await count('private.audit_logs')).toBe(0);
    } finally {
      await db().query(`update private.settings set audit_retention = interval '90 days'`);
    }
  });

  it('refuses a retention under a day and a batch size out of range', async () => {
    await expect(db().query(`update private.settings set audit_retention = interval '1 hour'`))
      .rejects.toMatchObject({ code: '23514' });
    await expect(prune(0)).rejects.toMatchObject({ code: '22023' });
  });

  it('finds old rows through the occurred_at index, not by scanning the table', async () => {
    const plan = await db().withTransaction(async (c) => {
      await c.query(`insert into private.audit_logs (occurred_at, operation, source, outcome)
                     select now() - make_interval(secs => n), 'ensure_profile', 'trigger', 'existed' from generate_series(1, 100000) n`);
      await c.query('analyze private.audit_logs');
      const { rows } = await c.query(`explain (format json) select o.id from private.audit_logs o
                                      where o.occurred_at < now() - interval '90 days' order by o.occurred_at limit 10000`);
      return JSON.stringify(rows[0]['QUERY PLAN']);
    });
    expect(plan).toContain('audit_logs_occurred_at_idx');
    expect(plan).not.toContain('Seq Scan');
  });
});
