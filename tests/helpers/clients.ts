import { randomUUID } from 'node:crypto';
import {
  createClient,
  type SupabaseClient,
  type SupabaseClientOptions,
} from '@supabase/supabase-js';
import type { Database } from '../../shared/database.types.ts';
import { REALTIME_OPTIONS } from '../../shared/supabase-client.ts';

/** A supabase-js client as an app on Node would make one: no stored session, no Realtime socket. */
export function appClient(
  url: string,
  key: string,
  options: SupabaseClientOptions<'public'> = {},
): SupabaseClient<Database> {
  return createClient<Database>(url, key, {
    ...options,
    auth: {
      persistSession: false,
      autoRefreshToken: false,
      detectSessionInUrl: false,
      ...options.auth,
    },
    realtime: { ...REALTIME_OPTIONS, ...options.realtime },
  });
}

/**
 * A client address of its own for a request delivered straight to a handler: a random IPv6 /64
 * from the documentation range, so each caller has its own rate-limit bucket.
 */
export function randomClientAddress(): string {
  return `2001:db8:${randomUUID().slice(0, 4)}:${randomUUID().slice(0, 4)}::1`;
}
