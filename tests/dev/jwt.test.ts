// verifyJwt, which the Auth and PostgREST stand-ins and the functions gateway share, and the
// cache of tokens it has already verified.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { JwtRejected, verifyJwt } from '../../dev/jwt.ts';
import { localKeys, signHs256 } from '../../dev/keys.ts';

afterEach(() => {
  vi.useRealTimers();
});

describe('verifyJwt', () => {
  it('rejects a token it accepted once, from the cache, when the token expires', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const keys = await localKeys();
    const token = await signHs256(
      { role: 'service_role', exp: Math.floor(Date.now() / 1000) + 60 },
      keys.jwtSecret,
    );
    expect(await verifyJwt(token, keys)).toMatchObject({ role: 'service_role' });
    expect(await verifyJwt(token, keys)).toMatchObject({ role: 'service_role' });
    vi.setSystemTime(Date.now() + 61_000);
    await expect(verifyJwt(token, keys)).rejects.toThrow(JwtRejected);
    await expect(verifyJwt(token, keys)).rejects.toThrow('"exp" claim timestamp check failed');
  });

  it('does not take a token verified with other keys from the cache', async () => {
    const ours = await localKeys();
    const theirs = await localKeys({ jwtSecret: 'another-secret-that-is-long-enough-0123456' });
    expect(await verifyJwt(ours.serviceRoleKey, ours)).toMatchObject({ role: 'service_role' });
    await expect(verifyJwt(ours.serviceRoleKey, theirs)).rejects.toThrow(
      'signature verification failed',
    );
  });

  it('hands every caller its own copy of the claims', async () => {
    const keys = await localKeys();
    const first = await verifyJwt(keys.anonKey, keys);
    first.role = 'service_role';
    expect(await verifyJwt(keys.anonKey, keys)).toMatchObject({ role: 'anon' });
  });
});
