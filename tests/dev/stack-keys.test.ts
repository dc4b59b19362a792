import { describe, expect, it } from 'vitest';
import { DEFAULT_JWT_SECRET, localKeys } from '../../dev/keys.ts';
import { appClient } from '../helpers/clients.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { useLocalApi } from '../helpers/local-api.ts';

const db = useTestDatabase();
const SECRET = 'a-team-chosen-secret-that-is-long-enough-0123';
const api = useLocalApi(db, { jwtSecret: SECRET });

describe('the local keys', () => {
  it('are the Supabase CLI demo keys by default, the same on every start', async () => {
    const keys = await localKeys();
    expect(keys.jwtSecret).toBe(DEFAULT_JWT_SECRET);
    expect(keys.anonKey).toBe(
      'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJpc3MiOiJzdXBhYmFzZS1kZW1vIiwicm9sZSI6ImFub24iLCJleHAiOjE5ODM4MTI5OTZ9.CRXP1A7WOeoJeXxjNni43kdQwgnWNReilDMblYTn_I0',
    );
    expect((await localKeys()).serviceRoleKey).toBe(keys.serviceRoleKey);
  });

  it('can be replaced: the stack then accepts keys signed with the new secret and refuses the defaults', async () => {
    const { stack } = api();
    expect(stack.keys.anonKey).toBe((await localKeys({ jwtSecret: SECRET })).anonKey);
    const ours = await appClient(stack.apiUrl, stack.keys.serviceRoleKey).rpc(
      'profile_system_health',
    );
    expect(ours.error).toBeNull();
    const defaults = await appClient(stack.apiUrl, (await localKeys()).serviceRoleKey).rpc(
      'profile_system_health',
    );
    expect(defaults.status).toBe(401);
    expect(defaults.error?.code).toBe('PGRST301');
  });

  it('stand for their JWTs at the gateway: the secret key as bearer or apikey is the service role, the publishable key is anon', async () => {
    const { stack } = api();
    const call = async (headers: Record<string, string>) => {
      const response = await fetch(`${stack.apiUrl}/rest/v1/rpc/profile_system_health`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: '{}',
      });
      return { status: response.status, code: ((await response.json()) as { code?: string }).code };
    };
    expect(
      (await call({
        apikey: stack.keys.secretKey,
        authorization: `Bearer ${stack.keys.secretKey}`,
      })).status,
    ).toBe(200);
    expect((await call({ apikey: stack.keys.secretKey })).status).toBe(200);
    expect(
      await call({
        apikey: stack.keys.publishableKey,
        authorization: `Bearer ${stack.keys.publishableKey}`,
      }),
    ).toEqual({ status: 401, code: '42501' });
    expect(await call({ apikey: 'sb_secret_not_this_stacks_key' })).toEqual({
      status: 401,
      code: undefined,
    });
  });
});
