// Turning a result into PostgREST's HTTP response: status, Content-Range, Content-Type (with the
// profile it was negotiated for) and the headers/status a function set through response.headers
// and response.status.
import type { RestError } from './errors.ts';
import type { MediaChoice, RequestContext } from './request-context.ts';
import type { TxOutcome } from './transaction.ts';

export const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';

function contentType(media: MediaChoice): string {
  if (media.singular) return `application/vnd.pgrst.object+json${media.stripNulls ? ';nulls=stripped' : ''}; charset=utf-8`;
  if (media.stripNulls) return 'application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8';
  return JSON_CONTENT_TYPE;
}

/** `0-9/42`; `*` for the range when no row is in it, `*` for the total when nothing was counted. */
export function contentRange(lower: number, upper: number, total: number | null): string {
  const range = total !== 0 && lower <= upper ? `${lower}-${upper}` : '*';
  return `${range}/${total ?? '*'}`;
}

/** 206 when a counted result is cut by limit/offset, 416 when the offset is past the end. */
export function rangeStatus(lower: number, upper: number, total: number | null): 200 | 206 | 416 {
  if (total === null) return 200;
  if (lower > total) return 416;
  if (1 + upper - lower < total) return 206;
  return 200;
}

export function prefAppliedHeader(ctx: RequestContext, applied: (keyof RequestContext['prefer'])[]): Record<string, string> {
  const values = applied.flatMap((key) => (ctx.prefer[key] ? [`${key}=${ctx.prefer[key]}`] : []));
  return values.length > 0 ? { 'Preference-Applied': values.join(', ') } : {};
}

export function respond(
  ctx: RequestContext,
  outcome: Pick<TxOutcome<unknown>, 'statusOverride' | 'extraHeaders'>,
  status: number,
  body: string | null,
  headers: Record<string, string> = {},
): Response {
  const all = new Headers();
  for (const [key, value] of Object.entries(headers)) all.set(key, value);
  if (body !== null) {
    all.set('Content-Type', contentType(ctx.media));
    if (ctx.schemaNegotiated) all.set('Content-Profile', ctx.schema);
  }
  // Headers a function set win over ours, as in PostgREST.
  for (const [key, value] of Object.entries(outcome.extraHeaders)) all.set(key, value);
  const finalStatus = outcome.statusOverride ?? status;
  const noBody = finalStatus === 204 || finalStatus === 304 || ctx.method === 'HEAD';
  return new Response(noBody ? null : body, { status: finalStatus, headers: all });
}

export function errorResponse(error: RestError): Response {
  const headers = new Headers({ 'Content-Type': JSON_CONTENT_TYPE, 'Proxy-Status': `PostgREST; error=${error.code}` });
  for (const [key, value] of Object.entries(error.headers)) headers.set(key, value);
  return new Response(JSON.stringify(error.toBody()), { status: error.status, headers });
}
