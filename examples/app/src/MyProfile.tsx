import { type FormEvent, useEffect, useState } from 'react';
import { useProfile } from 'supabase-profile-guard/react';
import { Field } from './Field.tsx';
import { kit, supabase } from './supabase.ts';

/** The signed-in user's own profile, read and edited through RLS (editable columns only). */
export function MyProfile() {
  const profile = useProfile(kit);
  const [saved, setSaved] = useState(false);
  const [waiting, setWaiting] = useState(false);
  const missing = !profile.loading && profile.data === null && profile.error === null;

  // Signed in without a profile yet (a 202 from register, a profile still being repaired): wait,
  // with the kit's bounded backoff, until the backend has made it, then show it.
  useEffect(() => {
    if (!missing) return;
    let live = true;
    setWaiting(true);
    kit.waitForProfile()
      .then(async () => {
        if (live) await profile.reload();
      }, () => undefined)
      .finally(() => {
        if (live) setWaiting(false);
      });
    return () => {
      live = false;
    };
  }, [missing, profile.reload]);

  async function save(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    const text = (name: string) => String(data.get(name) ?? '').trim() || null;
    setSaved(false);
    const updated = await profile.update({
      full_name: text('full_name'),
      username: text('username'),
    });
    setSaved(updated !== null);
  }

  if (waiting || (profile.loading && !profile.data)) {
    return <p role='status' data-testid='profile-pending'>Your profile is being set up…</p>;
  }
  if (!profile.data) {
    return (
      <p role='alert' data-testid='profile-missing'>
        {profile.error?.message ?? 'No profile yet.'}
      </p>
    );
  }
  const fields = profile.error?.fields ?? {};
  return (
    <section aria-label='My profile'>
      <h2>My profile</h2>
      <dl>
        <dt>Email</dt>
        <dd data-testid='profile-email'>{profile.data.email}</dd>
        <dt>Full name</dt>
        <dd data-testid='profile-full-name'>{profile.data.full_name}</dd>
        <dt>Username</dt>
        <dd data-testid='profile-username'>{profile.data.username}</dd>
      </dl>
      <form aria-label='Edit profile' key={profile.data.updated_at} onSubmit={(e) => void save(e)}>
        <Field
          label='Full name'
          name='full_name'
          defaultValue={profile.data.full_name ?? ''}
          error={fields.full_name}
        />
        <Field
          label='Username'
          name='username'
          defaultValue={profile.data.username ?? ''}
          error={fields.username}
        />
        <button type='submit'>Save</button>
        {saved && <p role='status' data-testid='profile-saved'>Saved.</p>}
        {profile.error && Object.keys(fields).length === 0 && (
          <p role='alert' data-testid='profile-error'>{profile.error.message}</p>
        )}
      </form>
      <button type='button' onClick={() => void supabase.auth.signOut()}>Sign out</button>
    </section>
  );
}
