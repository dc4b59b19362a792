// /admin/users, after supabase/auth internal/api/admin.go and pagination.go: what supabase-js
// auth.admin.createUser / listUsers / getUserById / deleteUser call with the service-role key.
import { randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import type { Context } from 'hono';
import { z } from 'zod';
import { AuthError, badRequest, internalError, notFound, unprocessable } from '../errors.ts';
import { requireAdmin } from '../guards.ts';
import type { AuthConfig } from '../options.ts';
import { hashPassword, isBcryptHash, randomPassword } from '../passwords.ts';
import { readBody, requestAud } from '../request.ts';
import { renderStoredUser } from '../user-json.ts';
import { deleteUser, findUserById, findUserWithEmail, listUsers, phoneTaken, softDeleteUser } from '../user-queries.ts';
import type { StoredUser } from '../user-queries.ts';
import { withTransaction } from '../../transaction.ts';
import { insertAuthUser } from '../user-store.ts';
import type { NewAuthIdentity } from '../user-store.ts';
import { isUuid, validateEmail, validatePhone } from '../validation.ts';

const JsonObject = z.record(z.string(), z.unknown());

const AdminUserBody = z.object({
  id: z.string().nullish(),
  aud: z.string().nullish(),
  role: z.string().nullish(),
  email: z.string().nullish(),
  phone: z.string().nullish(),
  password: z.string().nullish(),
  password_hash: z.string().nullish(),
  email_confirm: z.boolean().nullish(),
  phone_confirm: z.boolean().nullish(),
  user_metadata: JsonObject.nullish(),
  app_metadata: JsonObject.nullish(),
  ban_duration: z.string().nullish(),
});

const DeleteBody = z.object({ should_soft_delete: z.boolean().nullish() });

const NIL_UUID = '00000000-0000-0000-0000-000000000000';
const DEFAULT_PER_PAGE = 50;

function pageParameter(value: string | undefined, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  if (!/^\d+$/.test(value)) {
    throw badRequest('validation_failed', `Bad Pagination Parameters: strconv.ParseUint: parsing ${JSON.stringify(value)}: invalid syntax`);
  }
  return Number(value);
}

/**
 * addPaginationHeaders: `Link` with rel="next" (when there is a next page) and rel="last", built
 * from the request as GoTrue sees it behind the gateway (no /auth/v1), query keys sorted as Go's
 * url.Values.Encode sorts them. supabase-js reads the page numbers back out of it.
 */
function paginationHeaders(c: Context, page: number, perPage: number, total: number): Record<string, string> {
  const totalPages = Math.ceil(total / perPage);
  const query = new URL(c.req.url).searchParams;
  const link = (target: number) => {
    const params = new URLSearchParams();
    const keys = [...new Set([...query.keys(), 'page'])].sort();
    for (const key of keys) {
      if (key === 'page') params.append('page', String(target));
      else for (const value of query.getAll(key)) params.append(key, value);
    }
    return `</admin/users?${params.toString()}>`;
  };
  let header = '';
  if (totalPages > page) header += `${link(page + 1)}; rel="next", `;
  header += `${link(totalPages)}; rel="last"`;
  return { Link: header, 'X-Total-Count': String(total) };
}

async function loadUser(c: Context, config: AuthConfig): Promise<StoredUser> {
  const id = c.req.param('user_id') ?? '';
  if (!isUuid(id)) throw notFound('validation_failed', 'user_id must be an UUID');
  const user = await findUserById(config.pool, id);
  if (!user) throw notFound('user_not_found', 'User not found');
  return user;
}

async function encryptedPassword(body: z.infer<typeof AdminUserBody>, config: AuthConfig): Promise<string> {
  const hash = body.password_hash ?? '';
  if (body.password != null && hash !== '') {
    throw badRequest('validation_failed', 'Only a password or a password hash should be provided');
  }
  if (hash !== '') {
    if (hash.startsWith('$argon2') || hash.startsWith('$fbscrypt')) {
      throw badRequest('validation_failed', 'Only bcrypt password hashes are supported by the local Auth stand-in');
    }
    // GoTrue reads the bcrypt cost first and answers 500 when it cannot.
    if (!isBcryptHash(hash)) throw internalError('Error creating user', new Error('password_hash is not a bcrypt hash'));
    return hash;
  }
  const password = body.password || randomPassword();
  if (Buffer.byteLength(password) > 72) throw badRequest('validation_failed', 'bcrypt: password length exceeds 72 bytes');
  return await hashPassword(password, config.bcryptCost);
}

export function adminUserRoutes(config: AuthConfig): Hono {
  const app = new Hono();

  app.get('/admin/users', async (c) => {
    const claims = await requireAdmin(c, config);
    const page = Math.max(1, pageParameter(c.req.query('page'), 1));
    const perPage = pageParameter(c.req.query('per_page'), DEFAULT_PER_PAGE);
    // GoTrue divides by per_page and crashes on 0; a 400 says the same more usefully.
    if (perPage === 0) throw badRequest('validation_failed', 'Bad Pagination Parameters: per_page must be greater than 0');
    const aud = requestAud(c, config, claims);
    const { users, total } = await listUsers(config.pool, aud, page, perPage, c.req.query('filter') ?? '');
    return c.json({ users: users.map(renderStoredUser), aud }, 200, paginationHeaders(c, page, perPage, total));
  });

  app.post('/admin/users', async (c) => {
    const claims = await requireAdmin(c, config);
    const body = await readBody(c, AdminUserBody, 'api.AdminUserParams');
    const aud = body.aud || requestAud(c, config, claims);
    let email = body.email ?? '';
    let phone = body.phone ?? '';
    if (email === '' && phone === '') throw badRequest('validation_failed', 'Cannot create a user without either an email or phone');

    const providers: string[] = [];
    if (email !== '') {
      email = validateEmail(email);
      if (await findUserWithEmail(config.pool, email, aud)) {
        throw unprocessable('email_exists', 'A user with this email address has already been registered');
      }
      providers.push('email');
    }
    if (phone !== '') {
      phone = validatePhone(phone);
      if (await phoneTaken(config.pool, phone, aud)) throw unprocessable('phone_exists', 'Phone number already registered by another user');
      providers.push('phone');
    }

    const passwordHash = await encryptedPassword(body, config);
    let id: string = randomUUID();
    if (body.id) {
      if (!isUuid(body.id)) throw badRequest('validation_failed', 'ID must conform to the uuid v4 format');
      if (body.id === NIL_UUID) throw badRequest('validation_failed', 'ID cannot be a nil uuid');
      id = body.id.toLowerCase();
    }
    if (body.ban_duration && body.ban_duration !== 'none') {
      throw badRequest('validation_failed', 'ban_duration is not supported by the local Auth stand-in');
    }

    const identities: NewAuthIdentity[] = providers.map((provider) => ({
      provider,
      providerId: id,
      identityData:
        provider === 'email'
          ? { sub: id, email, email_verified: false, phone_verified: false }
          : { sub: id, phone, email_verified: false, phone_verified: false },
    }));
    // GoTrue's UpdateAppMetaData deletes the keys sent as null and sets the others.
    const appMetadata = Object.fromEntries(Object.entries(body.app_metadata ?? {}).filter(([, value]) => value !== null));
    const appMetadataRemove = Object.entries(body.app_metadata ?? {}).filter(([, value]) => value === null).map(([key]) => key);

    try {
      await withTransaction(config.pool, (client) =>
        insertAuthUser(client, {
          id,
          aud,
          email: email || null,
          phone: phone || null,
          encryptedPassword: passwordHash,
          userMetadata: body.user_metadata ?? {},
          identities,
          role: body.role || 'authenticated',
          appMetadata,
          appMetadataRemove,
          emailConfirmed: body.email_confirm ?? false,
          phoneConfirmed: body.phone_confirm ?? false,
          userMetadataUpdate: body.email_confirm ? { email_verified: true } : null,
        }),
      );
    } catch (error) {
      if (error instanceof AuthError) throw error;
      throw internalError('Database error creating new user', error);
    }
    const created = await findUserById(config.pool, id);
    if (!created) throw internalError('Database error creating new user');
    return c.json(renderStoredUser(created));
  });

  app.get('/admin/users/:user_id', async (c) => {
    await requireAdmin(c, config);
    return c.json(renderStoredUser(await loadUser(c, config)));
  });

  app.delete('/admin/users/:user_id', async (c) => {
    await requireAdmin(c, config);
    const user = await loadUser(c, config);
    // GoTrue only decodes a body that is there; supabase-js always sends one.
    const text = await c.req.text();
    const softDelete = text.trim() === '' ? false : ((await readBody(c, DeleteBody, 'api.adminUserDeleteParams')).should_soft_delete ?? false);
    if (softDelete) {
      if (user.row.deleted_at === null) {
        await withTransaction(config.pool, (client) => softDeleteUser(client, user.row.id)).catch((error: unknown) => {
          throw internalError('Error soft deleting user', error);
        });
      }
    } else {
      await deleteUser(config.pool, user.row.id).catch((error: unknown) => {
        throw internalError('Database error deleting user', error);
      });
    }
    return c.json({});
  });

  return app;
}
