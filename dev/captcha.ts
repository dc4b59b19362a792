// A local stand-in for a CAPTCHA provider's siteverify endpoint (hCaptcha's and Turnstile's
// share the shape: a form POST of secret, response and remoteip, answered {"success": bool,
// "error-codes": [...]}). It accepts exactly one token, the one the stack's Auth stand-in
// accepts, so a local project has one CAPTCHA whichever side checks it.
import { Hono } from 'hono';

/** The secret register must send to the local siteverify (CAPTCHA_SECRET of the local stack). */
export const LOCAL_CAPTCHA_SECRET = 'local-captcha-secret-not-for-production';

export function createCaptchaApp(acceptedToken: string): Hono {
  const app = new Hono();
  app.post('/siteverify', async (c) => {
    const form = await c.req.parseBody();
    const secret = typeof form.secret === 'string' ? form.secret : '';
    const response = typeof form.response === 'string' ? form.response : '';
    if (secret !== LOCAL_CAPTCHA_SECRET) {
      return c.json({ success: false, 'error-codes': ['invalid-input-secret'] });
    }
    if (response === '') {
      return c.json({ success: false, 'error-codes': ['missing-input-response'] });
    }
    if (response !== acceptedToken) {
      return c.json({ success: false, 'error-codes': ['invalid-input-response'] });
    }
    return c.json({ success: true, 'error-codes': [] });
  });
  return app;
}
