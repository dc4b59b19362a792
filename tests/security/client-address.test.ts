// Who the client is, on the shapes a hosted gateway may deliver, and what Supabase Auth is told.
//   * register's per-client limit keys on the configured header and hop (CLIENT_ADDRESS_HEADER,
//     CLIENT_ADDRESS_HOP): what a client writes itself does not move it to another bucket, and a
//     request with no trustworthy address falls under the unattributed ceiling, never one
//     person's budget;
//   * profile-health's client-address probe shows an operator what their deployment receives;
//   * in signup mode Supabase Auth limits signups per address (30 per 5 minutes). Without
//     Sb-Forwarded-For every signup register makes counts against the function's own address,
//     i.e. the whole project's; with it, against each client's.
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { LOCAL_CAPTCHA_SECRET } from '../../dev/captcha.ts';
import { createRegisterHandler } from '../../shared/register-handler.ts';
import { useTestDatabase } from '../helpers/database.ts';
import { type LocalApi, useLocalApi } from '../helpers/local-api.ts';

const db = useTestDatabase();
const PASSWORD = 'correct-horse-battery';
const CAPTCHA = 'captcha-ok';
const email = (tag: string) => `${tag}-${randomUUID()}@example.test`;

// ============================================================================
// The probe, through the gateway and the real Deno worker
// ============================================================================
const HEALTH_TOKEN = 'client-address-probe-token';

/** What the probe answers (clientAddressProbe in shared/profile-health-handler.ts). */
interface ProbeBody {
  configured: { header: string; hop: number };
  client_address: string | null;
  rate_limit_key: string | null;
  /** Each address header the probe looks at, null when absent. */
  received: Record<string, string | null>;
}

async function probe(local: () => LocalApi, headers: Record<string, string>) {
  const response = await fetch(
    `${local().stack.apiUrl}/functions/v1/profile-health?probe=client-address`,
    {
      headers: { 'x-health-token': HEALTH_TOKEN, ...headers },
    },
  );
  return { status: response.status, body: (await response.json()) as ProbeBody };
}

describe('the client-address probe behind a gateway that appends the peer to x-forwarded-for (the default)', () => {
  const appending = useLocalApi(db, {
    functions: true,
    functionEnv: { PROFILE_HEALTH_TOKEN: HEALTH_TOKEN },
  });

  it('shows the last hop as the client, whatever the client wrote before it', async () => {
    const { status, body } = await probe(appending, {
      'x-forwarded-for': '198.51.100.9',
      'cf-connecting-ip': '198.51.100.10',
    });
    expect(status).toBe(200);
    expect(body).toEqual({
      configured: { header: 'x-forwarded-for', hop: 1 },
      client_address: '127.0.0.1',
      rate_limit_key: '127.0.0.1',
      received: {
        'x-forwarded-for': '198.51.100.9, 127.0.0.1',
        'cf-connecting-ip': '198.51.100.10',
        'x-real-ip': null,
        'true-client-ip': null,
        'x-envoy-external-address': null,
        forwarded: null,
      },
    });
  });

  it('is refused without the health token, and for an unknown probe', async () => {
    const anonymous = await fetch(
      `${appending().stack.apiUrl}/functions/v1/profile-health?probe=client-address`,
    );
    expect(anonymous.status).toBe(401);
    expect(
      (await probe(appending, {}).then(() =>
        fetch(`${appending().stack.apiUrl}/functions/v1/profile-health?probe=headers`, {
          headers: { 'x-health-token': HEALTH_TOKEN },
        })
      )).status,
    ).toBe(400);
  });
});

describe('the client-address probe behind a Cloudflare-shaped gateway with CLIENT_ADDRESS_HEADER=cf-connecting-ip', () => {
  const cloudflare = useLocalApi(db, {
    functions: true,
    clientAddressShape: 'cloudflare',
    functionEnv: { PROFILE_HEALTH_TOKEN: HEALTH_TOKEN, CLIENT_ADDRESS_HEADER: 'cf-connecting-ip' },
  });

  it('shows the address the gateway set, not the one the client sent', async () => {
    const { body } = await probe(cloudflare, {
      'cf-connecting-ip': '198.51.100.10',
      'x-forwarded-for': '198.51.100.9',
    });
    expect({
      configured: body.configured,
      client_address: body.client_address,
      cf: body.received['cf-connecting-ip'],
    }).toEqual({
      configured: { header: 'cf-connecting-ip', hop: 1 },
      client_address: '127.0.0.1',
      cf: '127.0.0.1',
    });
  });
});

describe('the client-address probe behind a gateway that sets no address header', () => {
  const bare = useLocalApi(db, {
    functions: true,
    clientAddressShape: 'none',
    functionEnv: { PROFILE_HEALTH_TOKEN: HEALTH_TOKEN },
  });

  it('shows no client when the client sent nothing, so such requests fall under the unattributed ceiling', async () => {
    const { body } = await probe(bare, {});
    expect({ client_address: body.client_address, rate_limit_key: body.rate_limit_key }).toEqual({
      client_address: null,
      rate_limit_key: null,
    });
  });
});

// ============================================================================
// Sb-Forwarded-For: Supabase Auth's per-address signup limit, per client
// ============================================================================
describe('register in signup mode against an Auth that limits signups per address', () => {
  // As hosted: Auth sees each caller's address, honours Sb-Forwarded-For (the project turned it
  // on), limits signups to 30 per 5 minutes per address and checks CAPTCHA.
  const auth = useLocalApi(db, {
    rateLimitByClientAddress: true,
    sbForwardedForEnabled: true,
    captchaToken: CAPTCHA,
  });

  function handler(forward: boolean) {
    const local = auth();
    return createRegisterHandler({
      config: local.config({
        REGISTER_MODE: 'signup',
        REGISTER_RATE_LIMIT_MAX: '100000',
        REGISTER_UNATTRIBUTED_RATE_LIMIT_MAX: '100000',
        ...(forward
          ? {
            REGISTER_FORWARD_CLIENT_ADDRESS: 'true',
            CAPTCHA_PROVIDER: 'hcaptcha',
            CAPTCHA_SECRET: LOCAL_CAPTCHA_SECRET,
            CAPTCHA_VERIFY_URL: `${local.stack.apiUrl}/captcha/siteverify`,
          }
          : {}),
      }),
    });
  }

  const from = (address: string, body: Record<string, unknown>) =>
    new Request('http://functions.local/register', {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': address },
      body: JSON.stringify(body),
    });

  async function statuses(
    register: (r: Request) => Promise<Response>,
    addresses: string[],
  ): Promise<number[]> {
    const answers: number[] = [];
    for (const address of addresses) {
      const response = await register(
        from(address, { email: email('fwd'), password: PASSWORD, captcha_token: CAPTCHA }),
      );
      answers.push(response.status);
    }
    return answers;
  }

  it('lets 40 signups from 40 clients through in a minute, and stops the 31st of 40 from one client with 429', async () => {
    const register = handler(true);
    const many = await statuses(
      register,
      Array.from({ length: 40 }, (_, i) => `203.0.113.${i + 1}`),
    );
    expect(many).toEqual(Array(40).fill(201));
    const one = await statuses(register, Array(40).fill('198.51.100.77'));
    expect(one).toEqual([...Array(30).fill(201), ...Array(10).fill(429)]);
  });

  it('checks the CAPTCHA itself, since Auth skips it for the secret key: a missing or wrong token creates nothing', async () => {
    const register = handler(true);
    for (const token of [undefined, 'wrong']) {
      const address = email('captcha');
      const response = await register(
        from('203.0.113.200', {
          email: address,
          password: PASSWORD,
          ...(token ? { captcha_token: token } : {}),
        }),
      );
      expect({ status: response.status, body: await response.json() }).toEqual({
        status: 400,
        body: {
          error: {
            code: 'captcha_failed',
            message: token ? 'The CAPTCHA check failed' : 'A CAPTCHA token is required',
            fields: { captcha_token: 'was not accepted' },
          },
        },
      });
      expect((await db().query('select 1 from auth.users where email = $1', [address])).rowCount)
        .toBe(0);
    }
  });

  it('without forwarding, lets Auth count every client against the function: 40 clients, and only 30 get through', async () => {
    const register = handler(false);
    const answers = await statuses(
      register,
      Array.from({ length: 40 }, (_, i) => `192.0.2.${i + 1}`),
    );
    expect(answers).toEqual([...Array(30).fill(201), ...Array(10).fill(429)]);
  });
});
