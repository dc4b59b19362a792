import { createClient, type SupabaseClient, type SupabaseClientOptions } from '@supabase/supabase-js';
import { REALTIME_OPTIONS } from '../../shared/supabase-client.ts';

/** A supabase-js client as an app on Node would make one: no stored session, no Realtime socket. */
export function appClient(url: string, key: string, options: SupabaseClientOptions<'public'> = {}): SupabaseClient {
  return createClient(url, key, {
    ...options,
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false, ...options.auth },
    realtime: { ...REALTIME_OPTIONS, ...options.realtime },
  });
}
