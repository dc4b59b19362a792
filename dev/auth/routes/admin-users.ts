// /admin/users, after supabase/auth internal/api/admin.go: what supabase-js auth.admin.createUser
// and deleteUser send with the service-role key (register's admin mode, and tests). Listing and
// reading users, phone users, app_metadata, roles, audiences, password hashes and bans are not
// modelled: nothing here asks for them.
import { randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import { z } from 'zod';
import { AuthError, badRequest, internalError, notFound, unprocessable } from '../errors.ts';
import { requireAdmin } from '../guards.ts';
import type { AuthConfig } from '../options.ts';
import { hashPassword, randomPassword } from '../passwords.ts';
import { readBody } from '../request.ts';
import { renderStoredUser } from '../user-json.ts';
import { deleteUser, findUserById, findUserWithEmail, softDeleteUser } from '../user-queries.ts';
import { withTransaction } from '../../transaction.ts';
import { insertAuthUser } from '../user-store.ts';
import { isUuid } from '../validation.ts';

const AdminUserBody = z.object({
  email: z.string().nullish(),
  password: z.string().nullish(),
  email_confirm: z.boolean().nullish(),
  user_metadata: z.record(z.string(), z.unknown()).nullish(),
});

const DeleteBody = z.object({ should_soft_delete: z.boolean().nullish() });

export function adminUserRoutes(config: AuthConfig): Hono {
  const app = new Hono();

  app.post('/admin/users', async (c) => {
    await requireAdmin(c, config);
    const body = await readBody(c, AdminUserBody);
    const email = (body.email ?? '').toLowerCase();
    if (email === '') {
      throw badRequest(
        'validation_failed',
        'Cannot create a user without either an email or phone',
      );
    }
    if (await findUserWithEmail(config.pool, email, config.audience)) {
      throw unprocessable(
        'email_exists',
        'A user with this email address has already been registered',
      );
    }

    const encryptedPassword = await hashPassword(
      body.password || randomPassword(),
      config.bcryptCost,
    );
    const id = randomUUID();
    try {
      await withTransaction(config.pool, (client) =>
        insertAuthUser(client, {
          id,
          email,
          encryptedPassword,
          userMetadata: body.user_metadata ?? {},
          identities: [{
            provider: 'email',
            providerId: id,
            identityData: { sub: id, email, email_verified: false, phone_verified: false },
          }],
          emailConfirmed: body.email_confirm ?? false,
          userMetadataUpdate: body.email_confirm ? { email_verified: true } : null,
        }));
    } catch (error) {
      if (error instanceof AuthError) throw error;
      throw internalError('Database error creating new user', error);
    }
    const created = await findUserById(config.pool, id);
    if (!created) throw internalError('Database error creating new user');
    return c.json(renderStoredUser(created));
  });

  app.delete('/admin/users/:user_id', async (c) => {
    await requireAdmin(c, config);
    const id = c.req.param('user_id');
    if (!isUuid(id)) throw notFound('validation_failed', 'user_id must be an UUID');
    const user = await findUserById(config.pool, id);
    if (!user) throw notFound('user_not_found', 'User not found');
    // GoTrue only decodes a body that is there; supabase-js always sends one.
    const text = await c.req.text();
    const softDelete = text.trim() === ''
      ? false
      : ((await readBody(c, DeleteBody)).should_soft_delete ?? false);
    if (softDelete) {
      if (user.row.deleted_at === null) {
        await withTransaction(config.pool, (client) => softDeleteUser(client, id)).catch(
          (error: unknown) => {
            throw internalError('Error soft deleting user', error);
          },
        );
      }
    } else {
      await deleteUser(config.pool, id).catch((error: unknown) => {
        throw internalError('Database error deleting user', error);
      });
    }
    return c.json({});
  });

  return app;
}
