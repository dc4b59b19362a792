// The answer schemas in shared/rpc-results.ts against the real functions: every answer parses,
// and parsing gives back exactly what the database sent, so no key the SQL writes is unknown to
// a strict part of a schema (and silently dropped from an answer passed on).
import { describe, expect, it } from 'vitest';
import { RPC_RESULTS, type RpcName } from '../../shared/rpc-results.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

const db = useTestDatabase();

async function answer(fn: RpcName, call: string, params: unknown[] = []): Promise<unknown> {
  return (await db().one<{ a: unknown }>(`select public.${fn}${call} as a`, params)).a;
}

function expectExactly(fn: RpcName, value: unknown): void {
  const schema = RPC_RESULTS[fn];
  if (schema === null) throw new Error(`${fn} has no schema`);
  expect(schema.parse(value), fn).toEqual(value);
}

describe('the answers of the database functions', () => {
  it('match their schemas exactly, in every outcome the tests can bring about', async () => {
    const user = await signUpAsSupabaseAuth(db(), {
      email: 'answers@example.test',
      userMetadata: { full_name: 'A', username: 'answers_1' },
    });
    await db().query('update private.settings set trigger_enabled = false');
    const missing = await signUpAsSupabaseAuth(db(), { email: 'missing@example.test' });
    await db().query('update private.settings set trigger_enabled = true');

    expectExactly('profile_backfill_estimate', await answer('profile_backfill_estimate', '()'));
    expectExactly(
      'backfill_missing_profiles',
      await answer('backfill_missing_profiles', '(p_batch_size => 10, p_dry_run => true)'),
    );
    expectExactly(
      'ensure_user_profile',
      await answer('ensure_user_profile', '($1, $2)', [user, 'ensure']),
    );
    expectExactly(
      'ensure_user_profile',
      await answer('ensure_user_profile', '($1, $2)', [missing, 'ensure']),
    );
    // A failure is recorded and answered, not raised: a constraint that refuses this one profile.
    await db().query('update private.settings set trigger_enabled = false');
    const blocked = await signUpAsSupabaseAuth(db(), { email: 'blocked@example.test' });
    await db().query('update private.settings set trigger_enabled = true');
    await db().query(
      `alter table public.user_profiles add constraint hostile_blocked check (email is distinct from 'blocked@example.test') not valid`,
    );
    expectExactly(
      'ensure_user_profile',
      await answer('ensure_user_profile', '($1, $2)', [blocked, 'ensure']),
    );
    await db().query('alter table public.user_profiles drop constraint hostile_blocked');
    expectExactly(
      'ensure_profile_for_caller',
      await answer('ensure_profile_for_caller', '($1, 10, 60)', [user]),
    );
    expectExactly(
      'ensure_profile_for_caller',
      await answer('ensure_profile_for_caller', '($1, 10, 60)', [
        '00000000-0000-4000-8000-000000000000',
      ]),
    );
    expectExactly(
      'register_preflight',
      await answer(
        'register_preflight',
        `('client-a', 10, 60, 'answers_1', 'answers@example.test')`,
      ),
    );
    expectExactly('register_preflight', await answer('register_preflight', `('client-a', 10, 60)`));
    expectExactly(
      'find_auth_user_by_email',
      await answer('find_auth_user_by_email', `('answers@example.test')`),
    );
    expectExactly(
      'find_auth_user_by_email',
      await answer('find_auth_user_by_email', `('nobody@example.test')`),
    );
    expectExactly(
      'idempotency_claim',
      await answer('idempotency_claim', `('register', 'key-1', '${'a'.repeat(64)}')`),
    );
    expectExactly(
      'idempotency_claim',
      await answer('idempotency_claim', `('register', 'key-1', '${'a'.repeat(64)}')`),
    );
    expectExactly(
      'idempotency_claim',
      await answer('idempotency_claim', `('register', 'key-1', '${'b'.repeat(64)}')`),
    );
    await answer(
      'idempotency_complete',
      `('register', 'key-1', '${'a'.repeat(64)}', 201, '{"ok": true}')`,
    );
    expectExactly(
      'idempotency_claim',
      await answer('idempotency_claim', `('register', 'key-1', '${'a'.repeat(64)}')`),
    );
    expectExactly('reconcile_profiles', await answer('reconcile_profiles', '(p_batch_size => 50)'));
    expectExactly('profile_census_step', await answer('profile_census_step', '()'));
    expectExactly('sync_profile_emails_step', await answer('sync_profile_emails_step', '()'));
    await db().query('update private.settings set trigger_enabled = false');
    expectExactly('evaluate_alerts', await answer('evaluate_alerts', '()'));
    expectExactly('alert_deliveries_claim', await answer('alert_deliveries_claim', '()'));
    expectExactly('profile_system_health', await answer('profile_system_health', '()'));
    expectExactly('profile_system_stats', await answer('profile_system_stats', `('1 hour')`));
    expectExactly(
      'profile_operations_stats',
      await answer('profile_operations_stats', `('1 hour')`),
    );
  });
});
