// @ts-nocheck -- a Deno script (Deno globals), outside the Node typecheck; `deno run` does not type-check it either.
// The cold-start benchmark's yardstick (tests/bench/cold-start.ts): the least a Supabase function
// that talks to Supabase boots with. It imports supabase-js, creates a service-role client at
// start-up, as ours do, and answers every request 200.
import { createClient } from '@supabase/supabase-js';

const supabase = createClient(
  Deno.env.get('SUPABASE_URL')!,
  Deno.env.get('SUPABASE_SERVICE_ROLE_KEY')!,
  {
    auth: { persistSession: false, autoRefreshToken: false },
  },
);

Deno.serve(() => Response.json({ ok: typeof supabase.from === 'function' }));
