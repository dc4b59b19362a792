// Local-only password the bootstrap gives the login roles (supabase_auth_admin, authenticator),
// as the Supabase CLI's local stack does.
export const LOCAL_ROLE_PASSWORD = 'postgres';

/** The same server URL pointed at another database and, optionally, another login role. */
export function databaseUrl(
  serverUrl: string,
  options: { database?: string; role?: string; password?: string } = {},
): string {
  const url = new URL(serverUrl);
  if (options.database) url.pathname = `/${options.database}`;
  if (options.role) {
    url.username = options.role;
    url.password = options.password ?? LOCAL_ROLE_PASSWORD;
  }
  return url.toString();
}
