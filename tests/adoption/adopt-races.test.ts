// Concurrent callers against an adopted quickstart table: one email registered by many requests at
// once, one user's missing profile asked for by many at once, and a flood of signups through Auth.
// Nothing answers 5xx, nobody gets two profiles or none.
import { beforeAll, describe, expect, it } from 'vitest';
import { createEnsureProfileHandler } from '../../shared/ensure-profile-handler.ts';
import { createRegisterHandler } from '../../shared/register-handler.ts';
import { appClient, randomClientAddress } from '../helpers/clients.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';
import { asPostgres, installQuickstart, usersWithoutOneProfile } from './quickstart-project.ts';

const PASSWORD = 'correct horse battery staple 42';
const db = useTestDatabase('bare');
beforeAll(async () => {
  await installQuickstart(db());
});
const api = useLocalApi(db);
beforeAll(async () => {
  await asPostgres(db(), 'select private.adopt_profile_table()');
});

async function profilesOf(email: string): Promise<number> {
  return (await db().one<{ n: number }>(
    `select count(*)::int as n from public.profiles p join auth.users u on u.id = p.id where u.email = $1`,
    [email],
  )).n;
}

describe('an adopted table under concurrent callers', () => {
  it('registers one email sent by 12 requests at once as one user with one profile', async () => {
    const register = createRegisterHandler({ config: api().config() });
    const email = 'racer@example.test';
    const statuses = await Promise.all(
      Array.from({ length: 12 }, () =>
        register(
          new Request('http://functions.local/register', {
            method: 'POST',
            headers: {
              'content-type': 'application/json',
              'x-forwarded-for': randomClientAddress(),
            },
            body: JSON.stringify({
              email,
              password: PASSWORD,
              username: 'racer_one',
              full_name: 'Racer',
            }),
          }),
        ).then((r) => r.status)),
    );
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
    expect(statuses).toContain(201);
    expect(
      (await db().one<{ n: number }>(
        'select count(*)::int as n from auth.users where email = $1',
        [email],
      )).n,
    ).toBe(1);
    expect(await profilesOf(email)).toBe(1);
    expect(
      await db().one(
        `select username from public.profiles p join auth.users u on u.id = p.id where u.email = $1`,
        [email],
      ),
    ).toEqual({ username: 'racer_one' });
  });

  it("makes one profile when 20 ensure-profile calls ask for one user's missing profile at once", async () => {
    const supabase = appClient(api().stack.apiUrl, api().stack.keys.anonKey);
    const { data } = await supabase.auth.signInWithPassword({
      email: 'racer@example.test',
      password: PASSWORD,
    });
    await db().query('delete from public.profiles where id = $1', [data.user!.id]);
    const ensure = createEnsureProfileHandler({ config: api().config() });
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        ensure(
          new Request('http://localhost/functions/v1/ensure-profile', {
            method: 'POST',
            headers: { authorization: `Bearer ${data.session!.access_token}` },
          }),
        ).then(async (r) => ({ status: r.status, body: await r.json() }))),
    );
    expect(answers.map((a) => a.status).filter((s) => s !== 200)).toEqual([]);
    expect(answers.filter((a) => a.body.profile_status === 'created')).toHaveLength(1);
    expect(await profilesOf('racer@example.test')).toBe(1);
  });

  it('gives each of 150 signups flooding Auth at once exactly one profile', async () => {
    const results = await Promise.all(
      Array.from(
        { length: 150 },
        (_, n) =>
          appClient(api().stack.apiUrl, api().stack.keys.anonKey).auth.signUp({
            email: `flood-${n}@example.test`,
            password: PASSWORD,
            options: { data: { full_name: `Flood ${n}`, username: `flood_${n % 10}` } },
          }).then((r) => r.error?.status ?? 200),
      ),
    );
    expect(results.filter((s) => s !== 200)).toEqual([]);
    expect(await usersWithoutOneProfile(db())).toEqual([]);
    // Ten usernames asked for fifteen times each: ten holders, the rest kept their profile without.
    const holders = await db().one<{ n: number }>(
      `select count(*)::int as n from public.profiles where username like 'flood\\_%'`,
    );
    expect(holders.n).toBe(10);
  });
});
