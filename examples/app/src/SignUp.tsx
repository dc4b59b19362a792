import type { FormEvent } from 'react';
import { useRegistration } from 'supabase-profile-guard/react';
import { Field } from './Field.tsx';
import { kit } from './supabase.ts';

/** Sign up through the kit: field errors beside their inputs, a pending state for a 202. */
export function SignUp() {
  const form = useRegistration(kit);

  function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    const text = (name: string) => String(data.get(name) ?? '').trim();
    void form.register({
      email: text('email'),
      password: String(data.get('password') ?? ''),
      full_name: text('full_name') || undefined,
      username: text('username') || undefined,
    });
  }

  const fields = form.fieldErrors;
  return (
    <form aria-label='Sign up' onSubmit={submit}>
      <h2>Sign up</h2>
      <Field label='Email' name='email' type='email' required error={fields.email} />
      <Field label='Password' name='password' type='password' required error={fields.password} />
      <Field label='Full name' name='full_name' error={fields.full_name} />
      <Field label='Username' name='username' error={fields.username} />
      <button type='submit' disabled={form.state === 'submitting'}>
        {form.state === 'submitting' ? 'Signing up…' : 'Sign up'}
      </button>
      {form.state === 'error' && Object.keys(fields).length === 0 && (
        <p role='alert' data-testid='signup-error'>{form.error?.message}</p>
      )}
      {form.state === 'pending' && !form.registration?.signedIn && (
        <p role='status' data-testid='signup-pending'>
          Check your email to confirm your address, then sign in.
        </p>
      )}
    </form>
  );
}
