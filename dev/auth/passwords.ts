// bcrypt, as GoTrue stores passwords; the cost is an option so tests can hash cheaply.
import { randomInt } from 'node:crypto';
import bcrypt from 'bcryptjs';

export async function hashPassword(password: string, cost: number): Promise<string> {
  return await bcrypt.hash(password, cost);
}

/** False for a wrong password and for a user without one. */
export async function passwordMatches(password: string, hash: string | null): Promise<boolean> {
  return hash ? await bcrypt.compare(password, hash) : false;
}

const PASSWORD_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';

/** What GoTrue gives an admin-created user sent without a password: 64 random characters. */
export function randomPassword(): string {
  return Array.from({ length: 64 }, () => PASSWORD_ALPHABET[randomInt(PASSWORD_ALPHABET.length)])
    .join('');
}
