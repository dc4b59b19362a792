// Request bodies. PostgREST passes the raw JSON text to PostgreSQL (json_to_record does the
// typing); it only needs to know that the text is a JSON object and which keys it carries. Every
// caller here sends one object: a row to insert or update, or a function's named arguments.
import type { Context } from 'hono';
import { invalidBody, notImplemented } from './errors.ts';

export interface JsonObjectBody {
  /** The text as sent, bound as one parameter. */
  raw: string;
  keys: string[];
}

/** Reads a JSON object body; `emptyAs` stands in for an empty body (RPC calls without arguments). */
export async function readJsonObject(c: Context, emptyAs: string | null): Promise<JsonObjectBody> {
  const contentType = (c.req.header('content-type') ?? 'application/json').split(';')[0]!.trim()
    .toLowerCase();
  if (contentType !== 'application/json') {
    throw invalidBody(`Content-Type not acceptable: ${contentType}`);
  }
  const text = await c.req.text();
  const raw = text.trim() === '' && emptyAs !== null ? emptyAs : text;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    // PostgREST drops the parser's message in favour of a generic one (PostgREST issue #2344).
    throw invalidBody('Empty or invalid json');
  }
  if (Array.isArray(value)) {
    throw notImplemented(
      'a JSON array body (several rows, or one call per element) is not supported by the local PostgREST stand-in',
    );
  }
  if (typeof value !== 'object' || value === null) {
    throw invalidBody('Empty or invalid json', 'The body must be a JSON object.');
  }
  return { raw, keys: Object.keys(value) };
}
