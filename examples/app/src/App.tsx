import { MyProfile } from './MyProfile.tsx';
import { SignIn } from './SignIn.tsx';
import { SignUp } from './SignUp.tsx';
import { useSession } from './useSession.ts';

export function App() {
  const session = useSession();

  if (session === undefined) return <p role='status'>Loading…</p>;
  return (
    <main>
      <h1>Profiles</h1>
      {session ? <MyProfile key={session.user.id} /> : (
        <>
          <SignUp />
          <SignIn />
        </>
      )}
    </main>
  );
}
