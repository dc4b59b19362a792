// Reading a JSON body the way GoTrue does: decoded into typed params, a body that is no JSON
// object or has a wrongly typed field being a 400 bad_json.
import type { Context } from 'hono';
import type { z } from 'zod';
import { badRequest } from './errors.ts';

export async function readBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  const text = await c.req.text();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw badRequest(
      'bad_json',
      `Could not parse request body as JSON: ${(error as Error).message}`,
    );
  }
  // Go decodes a JSON null into a struct as a no-op.
  const parsed = schema.safeParse(value ?? {});
  if (!parsed.success) {
    throw badRequest(
      'bad_json',
      `Could not parse request body as JSON: ${parsed.error.issues[0]!.message}`,
    );
  }
  return parsed.data;
}
