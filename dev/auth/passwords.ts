// bcrypt, as GoTrue stores passwords; the cost is an option so tests can hash cheaply.
import { randomInt } from 'node:crypto';
import bcrypt from 'bcryptjs';

export async function hashPassword(password: string, cost: number): Promise<string> {
  return await bcrypt.hash(password, cost);
}

/** False for a wrong password and for a stored value that is no bcrypt hash at all. */
export async function passwordMatches(password: string, hash: string | null): Promise<boolean> {
  if (!hash) return false;
  try {
    return await bcrypt.compare(password, hash);
  } catch {
    return false;
  }
}

/** A bcrypt hash GoTrue would accept as `password_hash` (it checks the cost can be read). */
export function isBcryptHash(value: string): boolean {
  return /^\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}$/.test(value);
}

const PASSWORD_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** What GoTrue gives an admin-created user sent without a password: 64 random characters. */
export function randomPassword(): string {
  return Array.from({ length: 64 }, () => PASSWORD_ALPHABET[randomInt(PASSWORD_ALPHABET.length)]).join('');
}
