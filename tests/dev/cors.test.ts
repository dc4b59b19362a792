// @vitest-environment happy-dom
// supabase-js in a page of another origin, with the browser's CORS check on (happy-dom preflights
// every cross-origin request and refuses an answer without Access-Control-Allow-Origin): sign-up,
// sign-in, a table read, a function, a refresh and sign-out all get through the local stack, each
// after a preflight the stack answered. Between page and stack a recording pass-through proxy
// shows what crossed the wire. The stack runs in a process of its own (see tests/kit/helpers.ts).
import { createServer, request as forward, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appClient } from '../helpers/clients.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { newPassword, uniqueEmail, useStackProcess } from '../kit/helpers.ts';

const db = useTestDatabase();
const api = useStackProcess(db, { functions: true });

interface Seen {
  line: string;
  allowOrigin: string | undefined;
}

let proxy: Server;
let proxyUrl = '';
const seen: Seen[] = [];

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  const target = new globalThis.URL(api().apiUrl);
  proxy = createServer((incoming, outgoing) => {
    const path = (incoming.url ?? '/').split('?')[0];
    const upstream = forward({
      host: target.hostname,
      port: target.port,
      method: incoming.method,
      path: incoming.url,
      headers: { ...incoming.headers, host: target.host },
    }, (answer) => {
      const allowOrigin = answer.headers['access-control-allow-origin'] as string | undefined;
      seen.push({ line: `${incoming.method} ${path} ${answer.statusCode}`, allowOrigin });
      outgoing.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(outgoing);
    });
    incoming.pipe(upstream);
  });
  proxyUrl = await listen(proxy);
});

afterAll(async () => {
  proxy?.closeAllConnections();
  await new Promise<void>((resolve) => (proxy ? proxy.close(() => resolve()) : resolve()));
});

describe('supabase-js across origins with CORS enforced', () => {
  it('signs up, signs in, reads its profile, calls a function, refreshes and signs out, each after a preflight', async () => {
    expect(globalThis.location.origin).not.toBe(proxyUrl);
    const supabase = appClient(proxyUrl, api().anonKey);
    const email = uniqueEmail('cors');
    const password = newPassword();

    const signUp = await supabase.auth.signUp({ email, password });
    expect(signUp.error).toBeNull();
    const signIn = await supabase.auth.signInWithPassword({ email, password });
    expect(signIn.error).toBeNull();
    const userId = signIn.data.user!.id;
    const rows = await supabase.from('user_profiles').select('user_id');
    expect(rows).toMatchObject({ error: null, status: 200, data: [{ user_id: userId }] });
    const ensured = await supabase.functions.invoke('ensure-profile', { body: {} });
    expect(ensured.error).toBeNull();
    expect(ensured.data).toMatchObject({ user_id: userId, profile_status: 'existed' });
    const refreshed = await supabase.auth.refreshSession();
    expect(refreshed.error).toBeNull();
    expect(refreshed.data.session!.refresh_token).not.toBe(signIn.data.session!.refresh_token);
    expect((await supabase.auth.signOut()).error).toBeNull();

    expect(seen.map((s) => s.line)).toEqual([
      'OPTIONS /auth/v1/signup 204',
      'POST /auth/v1/signup 200',
      'OPTIONS /auth/v1/token 204',
      'POST /auth/v1/token 200',
      'OPTIONS /rest/v1/user_profiles 204',
      'GET /rest/v1/user_profiles 200',
      'OPTIONS /functions/v1/ensure-profile 204',
      'POST /functions/v1/ensure-profile 200',
      'OPTIONS /auth/v1/token 204',
      'POST /auth/v1/token 200',
      'OPTIONS /auth/v1/logout 204',
      'POST /auth/v1/logout 204',
    ]);
    expect(new Set(seen.map((s) => s.allowOrigin))).toEqual(new Set(['*']));
  });

  it('the check is on: an API answering without CORS headers is refused by the page', async () => {
    const bare = createServer((_request, response) =>
      response.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    );
    const bareUrl = await listen(bare);
    try {
      await expect(
        fetch(`${bareUrl}/rest/v1/user_profiles`, { headers: { apikey: api().anonKey } }),
      )
        .rejects.toThrow(/Cross-Origin|CORS/i);
    } finally {
      bare.closeAllConnections();
      await new Promise<void>((resolve) => bare.close(() => resolve()));
    }
  });
});
