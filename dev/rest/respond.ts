// Turning a result into PostgREST's HTTP response: status, Content-Range, Preference-Applied and
// Content-Type (with Content-Profile when the request named the schema), and errors as PostgREST
// sends them (always as application/json, whatever Accept asked for).
import type { RestError } from './errors.ts';
import { EXPOSED_SCHEMA, type RequestContext } from './request-context.ts';

const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';
const OBJECT_CONTENT_TYPE = 'application/vnd.pgrst.object+json; charset=utf-8';

/** `0-9/*`: the rows in the answer, `*` when there are none; the total is never counted here. */
export function contentRange(lower: number, upper: number): string {
  return `${lower <= upper ? `${lower}-${upper}` : '*'}/*`;
}

/** The preferences that shaped the answer, named as the request named them. */
export function prefAppliedHeader(
  ctx: RequestContext,
  applied: (keyof RequestContext['prefer'])[],
): Record<string, string> {
  const values = applied.flatMap((key) => (ctx.prefer[key] ? [`${key}=${ctx.prefer[key]}`] : []));
  return values.length > 0 ? { 'Preference-Applied': values.join(', ') } : {};
}

export function respond(
  ctx: RequestContext,
  status: number,
  body: string | null,
  headers: Record<string, string>,
): Response {
  const all = new Headers(headers);
  if (body !== null) {
    all.set('Content-Type', ctx.singular ? OBJECT_CONTENT_TYPE : JSON_CONTENT_TYPE);
    if (ctx.schemaNegotiated) all.set('Content-Profile', EXPOSED_SCHEMA);
  }
  return new Response(status === 204 ? null : body, { status, headers: all });
}

export function errorResponse(error: RestError): Response {
  const headers = new Headers({
    'Content-Type': JSON_CONTENT_TYPE,
    'Proxy-Status': `PostgREST; error=${error.code}`,
  });
  for (const [key, value] of Object.entries(error.headers)) headers.set(key, value);
  return new Response(JSON.stringify(error.toBody()), { status: error.status, headers });
}
