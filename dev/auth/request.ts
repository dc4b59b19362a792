// Reading a request the way GoTrue does: JSON bodies decoded into typed params (a wrong type is a
// 400 bad_json with Go's decoder message), and the audience from X-JWT-AUD, the JWT, or the default.
import type { Context } from 'hono';
import type { JWTPayload } from 'jose';
import type { z } from 'zod';
import { badRequest } from './errors.ts';
import type { AuthConfig } from './options.ts';

function jsonKind(value: unknown): string {
  if (Array.isArray(value)) return 'array';
  if (value === null) return 'null';
  if (typeof value === 'boolean') return 'bool';
  return typeof value;
}

function goType(expected: unknown): string {
  if (expected === 'boolean') return 'bool';
  if (expected === 'record' || expected === 'object') return 'map[string]interface {}';
  return String(expected);
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  return path.reduce<unknown>((node, key) => (node !== null && typeof node === 'object' ? (node as Record<PropertyKey, unknown>)[key] : undefined), value);
}

/**
 * The body decoded into `schema`. `goStruct` names the params type in error messages
 * ("api.SignupParams"), as Go's encoding/json does.
 */
export async function readBody<S extends z.ZodType>(c: Context, schema: S, goStruct: string): Promise<z.infer<S>> {
  const text = await c.req.text();
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    const reason = text.trim() === '' ? 'unexpected end of JSON input' : (error as Error).message;
    throw badRequest('bad_json', `Could not parse request body as JSON: ${reason}`);
  }
  // Go decodes a JSON null into a struct as a no-op.
  if (value === null) value = {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw badRequest('bad_json', `Could not parse request body as JSON: json: cannot unmarshal ${jsonKind(value)} into Go value of type ${goStruct}`);
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = issue.path.map(String).join('.');
    const expected = 'expected' in issue ? issue.expected : 'value';
    throw badRequest(
      'bad_json',
      `Could not parse request body as JSON: json: cannot unmarshal ${jsonKind(valueAt(value, issue.path))} into Go struct field ${goStruct.replace(/^api\./, '')}.${field} of type ${goType(expected)}`,
    );
  }
  return parsed.data;
}

/** GoTrue's requestAud: the X-JWT-AUD header, else the token's audience, else the default. */
export function requestAud(c: Context, config: AuthConfig, claims?: JWTPayload): string {
  const header = c.req.header('X-JWT-AUD');
  if (header) return header;
  const aud = Array.isArray(claims?.aud) ? claims.aud[0] : claims?.aud;
  return aud || config.defaultAudience;
}
