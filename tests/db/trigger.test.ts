import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../helpers/database.ts';
import { githubMetadata, googleMetadata, signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';

const db = useTestDatabase();

async function profileOf(userId: string) {
  const { rows } = await db().query('select * from public.user_profiles where user_id = $1', [userId]);
  return rows[0];
}

async function auditOf(userId: string) {
  const { rows } = await db().query(
    'select source, outcome, sqlstate, message, details from private.audit_logs where user_id = $1 order by id',
    [userId],
  );
  return rows;
}

describe('the auth.users trigger in Supabase Auth context', () => {
  it('creates the profile of an email signup from full_name in user metadata', async () => {
    const id = await signUpAsSupabaseAuth(db(), {
      email: 'grace@example.test',
      userMetadata: { full_name: 'Grace Hopper', username: 'grace_h' },
    });
    const profile = await profileOf(id);
    expect(profile).toMatchObject({
      user_id: id,
      email: 'grace@example.test',
      full_name: 'Grace Hopper',
      username: 'grace_h',
      avatar_url: null,
      metadata: {},
      created_via: 'trigger',
    });
    expect(await auditOf(id)).toEqual([
      { source: 'trigger', outcome: 'created', sqlstate: null, message: null, details: {} },
    ]);
  });

  it('maps GitHub metadata: full_name, user_name and avatar_url', async () => {
    const id = await signUpAsSupabaseAuth(db(), {
      provider: 'github',
      email: 'octocat@example.test',
      userMetadata: githubMetadata(),
    });
    expect(await profileOf(id)).toMatchObject({
      full_name: 'The Octocat',
      username: 'octocat',
      avatar_url: 'https://avatars.githubusercontent.com/u/583231?v=4',
      created_via: 'trigger',
    });
  });

  it('maps Google metadata: name and picture, no username', async () => {
    const id = await signUpAsSupabaseAuth(db(), {
      provider: 'google',
      email: 'ada@example.test',
      userMetadata: googleMetadata({ full_name: undefined, avatar_url: undefined }),
    });
    expect(await profileOf(id)).toMatchObject({
      full_name: 'Ada Lovelace',
      username: null,
      avatar_url: 'https://lh3.googleusercontent.com/a/ACg8ocJ',
    });
  });
});
