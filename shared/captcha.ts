// CAPTCHA verification for signups register makes with a secret key. Supabase Auth skips its
// own CAPTCHA check for admin callers (GoTrue internal/api/middleware.go, verifyCaptcha), and a
// secret key is what Sb-Forwarded-For needs; so when register forwards client addresses it
// checks the token itself, with the provider Auth would have used, before calling Auth.
import { AppError, serviceUnavailable } from './errors.ts';

type CaptchaProvider = 'hcaptcha' | 'turnstile';

export interface CaptchaConfig {
  provider: CaptchaProvider;
  secret: string;
  verifyUrl: string;
}

// Both take a form POST of secret, response and remoteip and answer {"success": boolean, …}.
export const CAPTCHA_VERIFY_URLS: Readonly<Record<CaptchaProvider, string>> = {
  hcaptcha: 'https://api.hcaptcha.com/siteverify',
  turnstile: 'https://challenges.cloudflare.com/turnstile/v0/siteverify',
};

const VERIFY_TIMEOUT_MS = 5_000;
// The provider timed out or failed: an outage of its own, usually over within seconds, and the
// caller must solve a fresh CAPTCHA anyway before asking again.
const PROVIDER_RETRY_AFTER_SECONDS = 5;

function captchaFailed(message: string): AppError {
  return new AppError(400, 'captcha_failed', message, {
    fields: { captcha_token: 'was not accepted' },
  });
}

/** Resolves when the provider accepts the token; a 400 captcha_failed when not; 503 when it cannot be asked. */
export async function verifyCaptcha(
  config: CaptchaConfig,
  token: string | undefined,
  clientAddress: string | null,
  fetchImpl: typeof fetch = fetch,
): Promise<void> {
  if (token === undefined || token.trim() === '') {
    throw captchaFailed('A CAPTCHA token is required');
  }
  const form = new URLSearchParams({ secret: config.secret, response: token });
  if (clientAddress !== null) form.set('remoteip', clientAddress);
  let answer: { success?: unknown };
  try {
    const response = await fetchImpl(config.verifyUrl, {
      method: 'POST',
      body: form,
      signal: AbortSignal.timeout(VERIFY_TIMEOUT_MS),
    });
    if (!response.ok) throw new Error(`CAPTCHA provider answered ${response.status}`);
    answer = (await response.json()) as { success?: unknown };
  } catch (cause) {
    throw serviceUnavailable(
      'The CAPTCHA provider is unavailable; try again shortly',
      PROVIDER_RETRY_AFTER_SECONDS,
      cause,
    );
  }
  if (answer.success !== true) throw captchaFailed('The CAPTCHA check failed');
}
