import { type FormEvent, useState } from 'react';
import { Field } from './Field.tsx';
import { supabase } from './supabase.ts';

export function SignIn() {
  const [error, setError] = useState<string | null>(null);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    const { error: failed } = await supabase.auth.signInWithPassword({
      email: String(data.get('email') ?? ''),
      password: String(data.get('password') ?? ''),
    });
    setError(failed ? failed.message : null);
  }

  return (
    <form aria-label='Sign in' onSubmit={(event) => void submit(event)}>
      <h2>Sign in</h2>
      <Field label='Email' name='email' type='email' required />
      <Field label='Password' name='password' type='password' required />
      <button type='submit'>Sign in</button>
      {error && <p role='alert' data-testid='signin-error'>{error}</p>}
    </form>
  );
}
