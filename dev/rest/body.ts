// Request bodies. PostgREST passes the raw JSON text to PostgreSQL (json_to_record and friends do
// the typing); it only needs to know that the text is JSON and which keys it carries.
import type { Context } from 'hono';
import { invalidBody } from './errors.ts';

export interface JsonBody {
  /** The text as sent, bound as one parameter. */
  raw: string;
  value: unknown;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads a JSON body; `emptyAs` stands in for an empty body (RPC calls without arguments). */
export async function readJsonBody(c: Context, emptyAs: string | null): Promise<JsonBody> {
  const contentType = (c.req.header('content-type') ?? 'application/json').split(';')[0]!.trim().toLowerCase();
  if (contentType !== 'application/json') throw invalidBody(`Content-Type not acceptable: ${contentType}`);
  const text = await c.req.text();
  const raw = text.trim() === '' && emptyAs !== null ? emptyAs : text;
  try {
    return { raw, value: JSON.parse(raw) as unknown };
  } catch {
    // PostgREST drops the parser's message in favour of a generic one (PostgREST issue #2344).
    throw invalidBody('Empty or invalid json');
  }
}
