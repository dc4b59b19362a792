// The supabase-js calls an app built on Supabase's user-management quickstart makes, as it makes
// them: it reads public profiles, reads and saves the signed-in user's own profile (the
// quickstart's Account form saves with an upsert), lists posts with their authors (an embedded
// many-to-one), and signs people up through Auth. The adoption test runs them before and after
// adopting the app's table and expects the same answers.
import type { SupabaseClient } from '@supabase/supabase-js';
import { appClient } from '../helpers/clients.ts';

// The app has its own types; untyped clients keep this file independent of ours.
// deno-lint-ignore no-explicit-any
type AppClient = SupabaseClient<any, 'public', any>;

export interface AppEndpoint {
  url: string;
  anonKey: string;
}

export interface QuickstartProfile {
  id: string;
  username: string | null;
  full_name: string | null;
  avatar_url: string | null;
  website: string | null;
}

export interface AppAnswers {
  publicProfiles: QuickstartProfile[];
  ownProfile: Pick<QuickstartProfile, 'username' | 'website' | 'avatar_url'> | null;
  savedProfile: QuickstartProfile | null;
  posts: Array<
    {
      id: number;
      title: string;
      profiles: { username: string | null; full_name: string | null } | null;
    }
  >;
  signUp: { userId: string; profile: QuickstartProfile | null };
}

function anonClient(endpoint: AppEndpoint): AppClient {
  return appClient(endpoint.url, endpoint.anonKey) as unknown as AppClient;
}

function must<T>(result: { data: T | null; error: { message: string } | null }, what: string): T {
  if (result.error) throw new Error(`${what}: ${result.error.message}`);
  return result.data as T;
}

async function signIn(
  supabase: AppClient,
  user: { email: string; password: string },
): Promise<string> {
  const { data, error } = await supabase.auth.signInWithPassword(user);
  if (error) throw new Error(`sign in: ${error.message}`);
  return data.user.id;
}

/** Everyone's public profiles, as the app's member list reads them. */
export async function readPublicProfiles(endpoint: AppEndpoint): Promise<QuickstartProfile[]> {
  return must(
    await anonClient(endpoint).from('profiles').select(
      'id, username, full_name, avatar_url, website',
    )
      .order('id'),
    'read public profiles',
  );
}

/** Signs in, reads the own profile as the Account form does, saves it with its upsert. */
export async function editOwnProfile(
  endpoint: AppEndpoint,
  user: { email: string; password: string },
  changes: { username: string; full_name: string; website: string; avatar_url: string },
): Promise<Pick<AppAnswers, 'ownProfile' | 'savedProfile'>> {
  const supabase = anonClient(endpoint);
  const id = await signIn(supabase, user);
  const ownProfile = must(
    await supabase.from('profiles').select('username, website, avatar_url').eq('id', id).single(),
    'read own profile',
  );
  must(
    await supabase.from('profiles').upsert({
      id,
      ...changes,
      updated_at: new Date().toISOString(),
    }),
    'save own profile',
  );
  const savedProfile = must(
    await supabase.from('profiles').select('id, username, full_name, avatar_url, website').eq(
      'id',
      id,
    )
      .single(),
    'read saved profile',
  );
  await supabase.auth.signOut();
  return { ownProfile, savedProfile };
}

/** The posts page: every post with its author's name. */
export async function readPosts(endpoint: AppEndpoint): Promise<AppAnswers['posts']> {
  // Untyped, supabase-js cannot know that profiles is to-one (an app's generated types say so).
  return must<unknown>(
    await anonClient(endpoint).from('posts').select('id, title, profiles(username, full_name)')
      .order('id'),
    'read posts',
  ) as AppAnswers['posts'];
}

/** The sign-up form: Auth's signUp with the quickstart's metadata, then the new profile. */
export async function signUp(
  endpoint: AppEndpoint,
  user: { email: string; password: string; full_name: string; avatar_url: string },
): Promise<AppAnswers['signUp']> {
  const supabase = anonClient(endpoint);
  const { data, error } = await supabase.auth.signUp({
    email: user.email,
    password: user.password,
    options: { data: { full_name: user.full_name, avatar_url: user.avatar_url } },
  });
  if (error) {
    throw Object.assign(new Error(`sign up: ${error.message}`), {
      status: error.status,
      kind: error.name,
    });
  }
  const userId = data.user!.id;
  const profile = must(
    await supabase.from('profiles').select('id, username, full_name, avatar_url, website').eq(
      'id',
      userId,
    )
      .maybeSingle(),
    'read new profile',
  );
  return { userId, profile };
}
