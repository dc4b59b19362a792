// What an outsider learns from register, end to end through supabase-js, the gateway and the
// real Deno worker: nothing of another person's account, and — with email confirmation on, as on
// hosted Supabase by default — not even whether an address is registered (status, body shape,
// headers and timing), as Supabase Auth's own signup reveals nothing there either. With
// confirmation off Auth itself answers "User already registered", so register may say 409.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { ErrorBody, RegisterResult } from '../helpers/bodies.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { type LocalApi, useLocalApi } from '../helpers/local-api.ts';
import { signUpAsSupabaseAuth } from '../helpers/supabase-auth.ts';
import { type Answer, app, invoke } from '../e2e/helpers.ts';

const db = useTestDatabase();
const FUNCTION_ENV = { REGISTER_MODE: 'signup', REGISTER_RATE_LIMIT_MAX: '100000' };
const confirming = useLocalApi(db, {
  functions: true,
  autoconfirm: false,
  functionEnv: FUNCTION_ENV,
});
const autoconfirming = useLocalApi(db, {
  functions: true,
  autoconfirm: true,
  functionEnv: FUNCTION_ENV,
});

const PASSWORD = 'correct-horse-battery';
const email = (tag: string) => `${tag}-${randomUUID()}@example.test`;

/** register's answer: the result, or the error body for a 4xx. */
type RegisterAnswer = Answer<RegisterResult | ErrorBody>;

function register(local: () => LocalApi, body: Record<string, unknown>): Promise<RegisterAnswer> {
  return invoke<RegisterResult | ErrorBody>(
    app(local().stack.apiUrl, local().stack.keys.anonKey),
    'register',
    { body },
  );
}

/** Six people registering one fresh address within a few milliseconds, each with their own details. */
async function race(local: () => LocalApi) {
  const address = email('race');
  const racers = Array.from({ length: 6 }, (_, i) => ({
    email: address,
    password: `${PASSWORD}-${i}`,
    full_name: `Racer ${i} ${randomUUID()}`,
    username: `racer${i}_${randomUUID().slice(0, 8)}`,
    metadata: { phone: `+1555000${i}${randomUUID().slice(0, 4)}`, born: `19${80 + i}-01-01` },
  }));
  const answers = await Promise.all(racers.map((racer) => register(local, racer)));
  const users = await db().query<{ id: string }>('select id from auth.users where email = $1', [
    address,
  ]);
  expect(users.rows).toHaveLength(1);
  return { address, racers, answers, userId: users.rows[0]!.id };
}

/** Every racer's personal value that must appear in no other racer's answer. */
function leaks(
  racers: Array<{ full_name: string; username: string; metadata: { phone: string; born: string } }>,
  answers: RegisterAnswer[],
): string[] {
  const found: string[] = [];
  answers.forEach((answer, i) => {
    const text = JSON.stringify(answer.body);
    racers.forEach((racer, j) => {
      if (i === j) return;
      for (
        const value of [racer.full_name, racer.username, racer.metadata.phone, racer.metadata.born]
      ) {
        if (text.includes(value)) found.push(`answer ${i} carries racer ${j}'s ${value}`);
      }
    });
  });
  return found;
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

async function timed(
  local: () => LocalApi,
  body: Record<string, unknown>,
): Promise<{ answer: RegisterAnswer; ms: number }> {
  const started = performance.now();
  const answer = await register(local, body);
  return { answer, ms: performance.now() - started };
}

describe('concurrent registrations of one address, email confirmation on', () => {
  it('give every racer the same "check your email" answer, carrying no profile and nothing of another racer', async () => {
    const { address, racers, answers, userId } = await race(confirming);
    expect(answers.map((a) => a.status)).toEqual([201, 201, 201, 201, 201, 201]);
    for (const answer of answers) {
      expect(answer.body).toEqual({
        user: { id: expect.any(String), email: address },
        profile: null,
        profile_status: 'awaiting_confirmation',
        email_confirmation_required: true,
        message: 'Check your email for a confirmation link to finish signing up.',
      });
    }
    expect(leaks(racers, answers)).toEqual([]);
    // Only the request that created the account was told its id, and the profile holds its details.
    const creators = answers.flatMap((
      a,
      i,
    ) => ((a.body as RegisterResult).user.id === userId ? [i] : []));
    expect(creators).toHaveLength(1);
    const profile = await db().one(
      'select full_name, username from public.user_profiles where user_id = $1',
      [userId],
    );
    expect(profile).toEqual({
      full_name: racers[creators[0]!]!.full_name,
      username: racers[creators[0]!]!.username,
    });
  });
});

describe('concurrent registrations of one address, email confirmation off', () => {
  it('give one racer its own profile and the five others 409 email_taken, as Auth answers them', async () => {
    const { racers, answers, userId } = await race(autoconfirming);
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(1);
    expect(statuses.filter((s) => s === 409)).toHaveLength(5);
    const winner = statuses.indexOf(201);
    const won = answers[winner]!.body as RegisterResult;
    expect(won.user.id).toBe(userId);
    expect(won.profile).toMatchObject({ user_id: userId, full_name: racers[winner]!.full_name });
    for (const answer of answers.filter((a) => a.status === 409)) {
      expect(answer.body).toEqual({
        error: {
          code: 'email_taken',
          message: 'An account with this email already exists',
          fields: { email: 'is already registered' },
        },
      });
    }
    expect(leaks(racers, answers)).toEqual([]);
  });
});

describe('registered and new addresses, email confirmation on', () => {
  const ROUNDS = 50;

  it(
    'cannot be told apart by status, body shape, headers or median time (within 20 %) over 50 requests each',
    async () => {
      const confirmed = await Promise.all(Array.from({ length: ROUNDS }, async () => {
        const address = email('confirmed');
        await signUpAsSupabaseAuth(db(), { email: address, emailConfirmed: true });
        return address;
      }));
      const unconfirmed = await Promise.all(Array.from({ length: ROUNDS }, async () => {
        const address = email('unconfirmed');
        await signUpAsSupabaseAuth(db(), { email: address, emailConfirmed: false });
        return address;
      }));
      // A fresh worker has no timings yet: a few registrations first, as any live project has had.
      for (let i = 0; i < 5; i++) {
        await register(confirming, { email: email('warm'), password: PASSWORD });
      }

      const fresh: Array<{ answer: RegisterAnswer; ms: number }> = [];
      const taken: Array<{ answer: RegisterAnswer; ms: number }> = [];
      for (let i = 0; i < ROUNDS; i++) {
        fresh.push(
          await timed(confirming, {
            email: email('fresh'),
            password: PASSWORD,
            full_name: 'Fresh',
          }),
        );
        const address = i % 2 === 0 ? confirmed[i]! : unconfirmed[i]!;
        taken.push(
          await timed(confirming, { email: address, password: PASSWORD, full_name: 'Fresh' }),
        );
      }

      // Every answer here is a 201: the result.
      const shape = ({ answer }: { answer: RegisterAnswer }) => ({
        status: answer.status,
        keys: Object.keys(answer.body).sort(),
        userKeys: Object.keys((answer.body as RegisterResult).user).sort(),
        profile: (answer.body as RegisterResult).profile,
        profile_status: (answer.body as RegisterResult).profile_status,
        headers: [...answer.headers.keys()].filter((name) => name !== 'date').sort(),
        type: answer.headers.get('content-type'),
      });
      const freshShapes = new Set(fresh.map((f) => JSON.stringify(shape(f))));
      const takenShapes = new Set(taken.map((t) => JSON.stringify(shape(t))));
      expect(freshShapes.size).toBe(1);
      expect([...takenShapes]).toEqual([...freshShapes]);

      const freshMedian = median(fresh.map((f) => f.ms));
      const takenMedian = median(taken.map((t) => t.ms));
      console.log(
        `enumeration: median ${freshMedian.toFixed(1)} ms for ${ROUNDS} new addresses, ${
          takenMedian.toFixed(1)
        } ms for ${ROUNDS} registered ones`,
      );
      expect(
        Math.abs(takenMedian - freshMedian) / freshMedian,
        `medians: new ${freshMedian.toFixed(1)} ms, registered ${takenMedian.toFixed(1)} ms`,
      ).toBeLessThanOrEqual(0.2);
      // Nothing was created for the registered addresses.
      const { n } = await db().one<{ n: number }>(
        'select count(*)::int as n from auth.users where email = any($1)',
        [[...confirmed, ...unconfirmed]],
      );
      expect(n).toBe(2 * ROUNDS);
    },
    120_000,
  );
});
