// The SQL the hosted schedule runs. pg_cron and pg_net are C extensions that cannot be installed
// here (no packages for the embedded PostgreSQL 17), so each test lays down, inside its own
// rolled-back transaction, the part of their SQL interface our functions use: cron.schedule /
// cron.unschedule / cron.job (pg_cron 1.4+), net.http_post / net._http_response (pg_net 0.7+)
// and vault.decrypted_secrets (Supabase Vault), with their documented names and types. The real
// pg_cron was checked on PostgreSQL 15 by hand (see the closing note).
import type { PoolClient } from 'pg';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../helpers/database.ts';

const db = useTestDatabase();
type Json = Record<string, unknown>;

async function withPgCron(c: PoolClient): Promise<void> {
  await c.query(`
    create schema cron;
    create table cron.job (
      jobid bigserial primary key, schedule text not null, command text not null,
      nodename text not null default 'localhost', nodeport integer not null default 5432,
      database text not null default current_database(), username text not null default current_user,
      active boolean not null default true, jobname text unique);
    create function cron.schedule(job_name text, schedule text, command text) returns bigint language sql as $$
      insert into cron.job (jobname, schedule, command) values (job_name, schedule, command)
      on conflict (jobname) do update set schedule = excluded.schedule, command = excluded.command
      returning jobid $$;
    create function cron.unschedule(job_name text) returns boolean language plpgsql as $$
      begin
        delete from cron.job where jobname = job_name;
        if not found then raise exception 'could not find valid entry for job ''%''', job_name; end if;
        return true;
      end $$;
    -- As on Supabase, where postgres schedules and reads its jobs.
    grant usage on schema cron to postgres;
    grant all on all tables in schema cron to postgres;
    grant all on all sequences in schema cron to postgres;`);
}

async function withPgNetAndVault(c: PoolClient, webhookUrl: string | null): Promise<void> {
  await c.query(`
    create schema net;
    create table net.http_request_queue (id bigserial primary key, method text, url text, headers jsonb, body jsonb, timeout_milliseconds integer);
    create table net._http_response (id bigint, status_code integer, content_type text, headers jsonb, content text,
                                     timed_out boolean, error_msg text, created timestamptz not null default now());
    create function net.http_post(url text, body jsonb default '{}'::jsonb, params jsonb default '{}'::jsonb,
                                  headers jsonb default '{"Content-Type": "application/json"}'::jsonb,
                                  timeout_milliseconds integer default 5000) returns bigint language sql as $$
      insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
      values ('POST', url, headers, body, timeout_milliseconds) returning id $$;
    create schema vault;
    create table vault.decrypted_secrets (id uuid default gen_random_uuid(), name text, decrypted_secret text, created_at timestamptz not null default now());
    -- As on Supabase, where postgres may call pg_net and read Vault's decrypted view.
    grant usage on schema net, vault to postgres;
    grant all on all tables in schema net, vault to postgres;
    grant all on all sequences in schema net to postgres;`);
  if (webhookUrl) {
    await c.query(
      `insert into vault.decrypted_secrets (name, decrypted_secret) values ('profile_alert_webhook_url', $1)`,
      [webhookUrl],
    );
  }
}

/** The one value of a query's first row (jsonb arrives parsed), typed as the caller reads it. */
async function one<T = unknown>(c: PoolClient, sql: string, params: unknown[] = []): Promise<T> {
  return Object.values((await c.query(sql, params)).rows[0]!)[0] as T;
}

describe('the schedule of run_self_repair()', () => {
  it('turns a period into the pg_cron schedule: seconds below a minute, a cron expression for whole minutes dividing an hour', async () => {
    const cases: Array<[string, string]> = [
      ['1 second', '1 seconds'],
      ['30 seconds', '30 seconds'],
      ['1 minute', '* * * * *'],
      ['5 minutes', '*/5 * * * *'],
      ['30 minutes', '*/30 * * * *'],
      ['1 hour', '0 * * * *'],
    ];
    for (const [period, schedule] of cases) {
      expect(
        (await db().one<{ s: string }>(
          'select private.self_repair_cron_schedule($1::interval) as s',
          [period],
        )).s,
      ).toBe(schedule);
    }
  });

  it('refuses a period a cron schedule cannot keep, and the settings keep the old one', async () => {
    for (const period of ['90 seconds', '7 minutes', '1.5 seconds', '2 hours', '0 seconds']) {
      await expect(
        db().query('update private.settings set self_repair_period = $1::interval', [period]),
      )
        .rejects.toMatchObject({ code: expect.stringMatching(/^(22023|23514)$/) });
    }
    expect(
      (await db().one<{ p: string }>('select self_repair_period::text as p from private.settings'))
        .p,
    ).toBe('00:01:00');
  });

  it('without pg_cron schedules nothing and says so, and self_repair_schedule() reports no scheduler', async () => {
    const notices: string[] = [];
    await db().withTransaction(async (c) => {
      c.on('notice', (n) => notices.push(n.message ?? ''));
      await c.query(`update private.settings set self_repair_period = interval '2 minutes'`);
      expect(await one(c, 'select public.self_repair_schedule()')).toEqual({
        enabled: true,
        period_seconds: 120,
        schedule: '*/2 * * * *',
        scheduler: null,
        job: null,
      });
    });
    expect(notices).toContain(
      'pg_cron is not installed: nothing scheduled (run `npm run reconcile -- --loop 60`, or enable pg_cron and update private.settings to schedule it)',
    );
  });

  it('with pg_cron follows the settings: scheduled, rescheduled at a new period, unscheduled when switched off', async () => {
    await db().withTransaction(async (c) => {
      await withPgCron(c);
      const jobs = async () =>
        (await c.query('select jobname, schedule, command from cron.job')).rows;

      await c.query('update private.settings set self_repair_enabled = true');
      expect(await jobs()).toEqual([{
        jobname: 'profile-self-repair',
        schedule: '* * * * *',
        command: 'select public.run_self_repair()',
      }]);

      await c.query(`update private.settings set self_repair_period = interval '30 seconds'`);
      expect(await jobs()).toEqual([{
        jobname: 'profile-self-repair',
        schedule: '30 seconds',
        command: 'select public.run_self_repair()',
      }]);
      expect(await one(c, 'select public.self_repair_schedule()')).toMatchObject({
        enabled: true,
        period_seconds: 30,
        scheduler: 'pg_cron',
        job: { schedule: '30 seconds', command: 'select public.run_self_repair()', active: true },
      });

      await c.query('update private.settings set self_repair_enabled = false');
      expect(await jobs()).toEqual([]);
      // Switching off twice is harmless: there is no job left to unschedule.
      await c.query('update private.settings set self_repair_enabled = false');
      expect(await jobs()).toEqual([]);
      await c.query('update private.settings set self_repair_enabled = true');
      expect(await jobs()).toEqual([{
        jobname: 'profile-self-repair',
        schedule: '30 seconds',
        command: 'select public.run_self_repair()',
      }]);
    });
  });

  it('refuses a period below a minute that an older pg_cron cannot keep, naming the setting, and the job keeps its schedule', async () => {
    await db().withTransaction(async (c) => {
      await withPgCron(c);
      // pg_cron 1.4 (Debian's package for PostgreSQL 15) knows only cron expressions; its error
      // text as the real one gives it.
      await c.query(`
        create or replace function cron.schedule(job_name text, schedule text, command text) returns bigint language plpgsql as $$
        begin
          if schedule like '% seconds' then raise exception 'invalid schedule: %', schedule; end if;
          insert into cron.job (jobname, schedule, command) values (job_name, schedule, command)
          on conflict (jobname) do update set schedule = excluded.schedule, command = excluded.command;
          return 1;
        end $$`);
      await c.query(`update private.settings set self_repair_period = interval '2 minutes'`);
      await c.query('savepoint refused');
      await expect(
        c.query(`update private.settings set self_repair_period = interval '10 seconds'`),
      ).rejects.toMatchObject({
        code: '22023',
        message:
          'self_repair_period of 00:00:10 is not accepted by this pg_cron (invalid schedule: 10 seconds): ' +
          'periods below a minute need pg_cron 1.5 or later; use whole minutes',
      });
      await c.query('rollback to savepoint refused');
      expect((await c.query('select jobname, schedule from cron.job')).rows).toEqual([{
        jobname: 'profile-self-repair',
        schedule: '*/2 * * * *',
      }]);
      expect(await one(c, 'select self_repair_period::text from private.settings')).toBe(
        '00:02:00',
      );
    });
  });

  it('one tick reconciles, checks a slice of profile emails, evaluates the alerts and reports that pg_net is not there to deliver them', async () => {
    await db().withTransaction(async (c) => {
      await c.query('update private.settings set trigger_enabled = false');
      const tick = await one(c, 'select public.run_self_repair()');
      expect(tick).toEqual({
        reconcile: {
          ran: true,
          batches: 1,
          census: expect.objectContaining({ ran: true }),
          queue: {
            due: 0,
            repaired: 0,
            failed: 0,
            user_deleted: 0,
            probed: 0,
            recovered: 0,
            made_due: 0,
          },
          sweep: { missing: 0, created: 0, failed: 0 },
          missing_profiles: 0,
          queued: 0,
          more: false,
        },
        emails: {
          ran: true,
          noted: 0,
          scanned: expect.any(Number),
          fixed: 0,
          pass_completed: true,
          duration_ms: expect.any(Number),
        },
        alerts: { status: 'degraded', transitions: [{ name: 'trigger_enabled', state: 'firing' }] },
        delivery: { via: null, reason: 'pg_net is not installed' },
        duration_ms: expect.any(Number),
      });
    });
  });
});

describe('alert delivery through pg_net', () => {
  const URL = 'https://hooks.slack.test/services/T000/B000/XXXX';

  /** One alert transition in the outbox (the trigger switched off). */
  async function transition(c: PoolClient): Promise<number> {
    await c.query('delete from private.alert_deliveries');
    await c.query('update private.settings set trigger_enabled = false');
    await c.query('select public.evaluate_alerts()');
    return Number(await one(c, 'select id from private.alert_deliveries'));
  }

  it('posts each due delivery with the message every deliverer sends, and marks it delivered on a 2xx response', async () => {
    await db().withTransaction(async (c) => {
      await withPgNetAndVault(c, URL);
      const id = await transition(c);
      expect(await one(c, 'select private.deliver_alerts_with_pg_net()')).toEqual({
        via: 'pg_net',
        posted: 1,
        delivered: 0,
        failed: 0,
      });
      const [request] = (await c.query(
        'select id, url, headers, body, timeout_milliseconds from net.http_request_queue',
      )).rows;
      const claimedMessage = private_message(
        await one(
          c,
          `select private.alert_message('trigger_enabled', 'firing', payload) from private.alert_deliveries where id = $1`,
          [id],
        ),
      );
      expect(request).toEqual({
        id: expect.any(String),
        url: URL,
        headers: { 'Content-Type': 'application/json' },
        body: claimedMessage,
        timeout_milliseconds: 5000,
      });
      expect(request.body.text).toBe(
        ':rotating_light: Profile system alert *trigger_enabled* started (status degraded): value false, threshold null',
      );

      // No response yet: nothing changes, nothing is posted twice.
      expect(await one(c, 'select private.deliver_alerts_with_pg_net()')).toEqual({
        via: 'pg_net',
        posted: 0,
        delivered: 0,
        failed: 0,
      });
      await c.query(`insert into net._http_response (id, status_code) values ($1, 200)`, [
        request.id,
      ]);
      expect(await one(c, 'select private.deliver_alerts_with_pg_net()')).toEqual({
        via: 'pg_net',
        posted: 0,
        delivered: 1,
        failed: 0,
      });
      expect(
        (await c.query(
          'select attempts, delivered_at is not null as delivered, net_request_id, last_error from private.alert_deliveries',
        )).rows,
      )
        .toEqual([{ attempts: 1, delivered: true, net_request_id: null, last_error: null }]);
    });
  });

  it('records a non-2xx answer or a timeout as a failed attempt, retried after its backoff', async () => {
    await db().withTransaction(async (c) => {
      await withPgNetAndVault(c, URL);
      await transition(c);
      await c.query('select private.deliver_alerts_with_pg_net()');
      const requestId = await one(c, 'select id from net.http_request_queue');
      await c.query(
        `insert into net._http_response (id, status_code, timed_out) values ($1, 500, false)`,
        [requestId],
      );
      expect(await one(c, 'select private.deliver_alerts_with_pg_net()')).toEqual({
        via: 'pg_net',
        posted: 0,
        delivered: 0,
        failed: 1,
      });
      expect(
        (await c.query(
          `select attempts, delivered_at, net_request_id, last_error, next_attempt_at > now() as backing_off
                             from private.alert_deliveries`,
        )).rows,
      )
        .toEqual([{
          attempts: 1,
          delivered_at: null,
          net_request_id: null,
          last_error: 'alert webhook answered 500',
          backing_off: true,
        }]);

      // Due again: posted again; this time pg_net reports a timeout.
      await c.query('update private.alert_deliveries set next_attempt_at = now()');
      expect(await one(c, 'select private.deliver_alerts_with_pg_net()')).toMatchObject({
        posted: 1,
      });
      const second = await one(c, 'select max(id) from net.http_request_queue');
      await c.query(
        `insert into net._http_response (id, timed_out, error_msg) values ($1, true, null)`,
        [second],
      );
      expect(await one(c, 'select private.deliver_alerts_with_pg_net()')).toMatchObject({
        failed: 1,
      });
      expect(await one(c, 'select last_error from private.alert_deliveries')).toBe(
        'alert webhook timed out',
      );
      expect(await one(c, 'select attempts from private.alert_deliveries')).toBe(2);
    });
  });

  it('gives up waiting for a response when the lease ends, and tries again later', async () => {
    await db().withTransaction(async (c) => {
      await withPgNetAndVault(c, URL);
      await transition(c);
      await c.query('select private.deliver_alerts_with_pg_net()');
      await c.query(
        `update private.alert_deliveries set claimed_until = now() - interval '1 second'`,
      );
      expect(await one(c, 'select private.deliver_alerts_with_pg_net()')).toEqual({
        via: 'pg_net',
        posted: 0,
        delivered: 0,
        failed: 1,
      });
      expect(await one(c, 'select last_error from private.alert_deliveries')).toBe(
        'no response from pg_net before the lease ended',
      );
    });
  });

  it('posts nothing without the webhook URL in Vault, or without pg_net', async () => {
    await db().withTransaction(async (c) => {
      await withPgNetAndVault(c, null);
      await transition(c);
      expect(await one(c, 'select private.deliver_alerts_with_pg_net()')).toEqual({
        via: null,
        reason: 'no profile_alert_webhook_url secret in Vault',
      });
      expect(await one(c, 'select count(*)::int from net.http_request_queue')).toBe(0);
    });
    await db().withTransaction(async (c) => {
      await transition(c);
      expect(await one(c, 'select private.deliver_alerts_with_pg_net()')).toEqual({
        via: null,
        reason: 'pg_net is not installed',
      });
      expect(await one(c, 'select attempts from private.alert_deliveries')).toBe(0);
    });
  });
});

/** The message as jsonb comes back from pg as an object already. */
function private_message(message: Json): Json {
  return message;
}
