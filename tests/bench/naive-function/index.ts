// @ts-nocheck -- a Deno script (Deno globals), outside the Node typecheck; `deno run` does not type-check it either.
// Bench-only baseline for the http benchmark: what a project writes without this system. One
// supabase-js call per profile, no retries, no audit, no validation beyond JSON. Served by its own
// `deno run` on $PORT with the same SUPABASE_URL and service key the real functions get.
//   POST /ensure-profile {"user_id"}             → insert into user_profiles
//   POST /register {"email","password","full_name"} → auth.admin.createUser, then one insert
import { createClient } from '@supabase/supabase-js';

const supabase = createClient(
  Deno.env.get('SUPABASE_URL')!,
  Deno.env.get('SUPABASE_SERVICE_ROLE_KEY')!,
  {
    auth: { persistSession: false, autoRefreshToken: false },
  },
);

Deno.serve(
  { hostname: '127.0.0.1', port: Number(Deno.env.get('PORT')), onListen: () => {} },
  async (request) => {
    const path = new URL(request.url).pathname;
    const body = await request.json();
    if (path.endsWith('/ensure-profile')) {
      const { error } = await supabase.from('user_profiles').insert({
        user_id: body.user_id,
        created_via: 'ensure',
      });
      return Response.json(error ? { error: error.message } : { user_id: body.user_id }, {
        status: error ? 500 : 201,
      });
    }
    if (path.endsWith('/register')) {
      const { data, error } = await supabase.auth.admin.createUser({
        email: body.email,
        password: body.password,
        email_confirm: true,
        user_metadata: { full_name: body.full_name },
      });
      if (error || !data.user) return Response.json({ error: error?.message }, { status: 400 });
      const inserted = await supabase.from('user_profiles').insert({
        user_id: data.user.id,
        email: data.user.email,
        full_name: body.full_name,
        created_via: 'register',
      });
      if (inserted.error) return Response.json({ error: inserted.error.message }, { status: 500 });
      return Response.json({ user: { id: data.user.id, email: data.user.email } }, { status: 201 });
    }
    return new Response('not found', { status: 404 });
  },
);
