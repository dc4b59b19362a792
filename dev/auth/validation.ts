// Input checks with GoTrue's exact codes and messages (internal/api/mail.go, phone.go,
// password.go), so a test against the stand-in fails the way the real service would.
import { badRequest, WeakPasswordError } from './errors.ts';

/** supabase/auth uses badoux/checkmail@d0a7596's format check, nothing stricter. */
const EMAIL_FORMAT =
  /^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;
const E164 = /^[1-9][0-9]{1,14}$/;

export const PASSWORD_MIN_LENGTH = 6;
// bcrypt ignores everything past 72 bytes, so GoTrue refuses longer passwords outright.
const PASSWORD_MAX_BYTES = 72;

/** The lower-cased address, or a 400 validation_failed. */
export function validateEmail(email: string): string {
  if (email === '') throw badRequest('validation_failed', 'An email address is required');
  if (Buffer.byteLength(email) > 255) throw badRequest('validation_failed', 'An email address is too long');
  if (!EMAIL_FORMAT.test(email)) throw badRequest('validation_failed', 'Unable to validate email address: invalid format');
  return email.toLowerCase();
}

/** The number as GoTrue stores it: no leading '+', no spaces. */
export function validatePhone(phone: string): string {
  const formatted = phone.replace(/^\+/, '').replaceAll(' ', '');
  if (!E164.test(formatted)) throw badRequest('validation_failed', 'Invalid phone number format (E.164 required)');
  return formatted;
}

/** The local stack's password policy: minimum length only (config.toml minimum_password_length). */
export function checkPasswordStrength(password: string): void {
  if (Buffer.byteLength(password) > PASSWORD_MAX_BYTES) {
    throw badRequest('validation_failed', `Password cannot be longer than ${PASSWORD_MAX_BYTES} characters`);
  }
  // Go's len() counts bytes, and so does GoTrue's minimum.
  if (Buffer.byteLength(password) < PASSWORD_MIN_LENGTH) {
    throw new WeakPasswordError(`Password should be at least ${PASSWORD_MIN_LENGTH} characters.`, ['length']);
  }
}

export function isUuid(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value);
}
