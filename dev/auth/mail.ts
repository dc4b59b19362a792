// Confirmation "emails". GoTrue mails a 6-digit OTP and a link carrying sha224(email + otp); it
// stores that hash as confirmation_token, so the link (GET /verify?token=<hash>) and the OTP
// (POST /verify {email, token}) both resolve to the same row.
import { createHash, randomInt } from 'node:crypto';

export interface ConfirmationMail {
  to: string;
  type: 'signup';
  link: string;
  token: string;
}

export interface Confirmation {
  otp: string;
  tokenHash: string;
}

export function tokenHash(email: string, otp: string): string {
  return createHash('sha224').update(email + otp).digest('hex');
}

export function newConfirmation(email: string): Confirmation {
  const otp = String(randomInt(0, 1_000_000)).padStart(6, '0');
  return { otp, tokenHash: tokenHash(email, otp) };
}

/** GoTrue's {{ .ConfirmationURL }}: the public Auth URL, the hashed token, and where to land. */
export function confirmationLink(authUrl: string, hash: string, redirectTo: string): string {
  return `${authUrl}/verify?token=${hash}&type=signup&redirect_to=${
    encodeURIComponent(redirectTo)
  }`;
}
