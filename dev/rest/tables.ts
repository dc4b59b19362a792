// GET/POST/PATCH/DELETE /:table, as PostgREST answers them for what this project sends: select
// (with to-one embeddings, embedding.ts) and eq filters on reads, updates and deletes, order and
// limit on reads; one JSON object per insert or update, read with json_to_record typed by the
// table's columns (which must exist in the schema cache); upserts (upsert.ts); Prefer
// return=representation; and Accept: application/vnd.pgrst.object+json, one row as a JSON object.
// The SQL is planned in table-plans.ts; this module turns its result into the response.
import type { Context } from 'hono';
import { readJsonObject } from './body.ts';
import { parseQuery } from './query-params.ts';
import { contentRange, prefAppliedHeader, respond } from './respond.ts';
import type { Result } from './sql.ts';
import { deletePlan, insertPlan, readPlan, updatePlan } from './table-plans.ts';
import { execute } from './transaction.ts';
import { type RequestContext, requestContext } from './request-context.ts';
import type { RestDeps } from './deps.ts';

export async function handleRead(c: Context, deps: RestDeps): Promise<Response> {
  const ctx = await requestContext(c, deps);
  const parsed = parseQuery(ctx.query, 'read');
  const result = await execute(
    deps,
    ctx,
    (cache) => readPlan(ctx, c.req.param('table')!, parsed, cache),
  );
  return respond(ctx, 200, result.body, { 'Content-Range': contentRange(0, result.pageTotal - 1) });
}

export async function handleInsert(c: Context, deps: RestDeps): Promise<Response> {
  const ctx = await requestContext(c, deps);
  // The body first: an array of rows comes with a `columns` parameter, and is refused as an array.
  const body = await readJsonObject(c, null);
  const parsed = parseQuery(ctx.query, 'write');
  const result = await execute(
    deps,
    ctx,
    (cache) => insertPlan(ctx, c.req.param('table')!, parsed, body, cache),
  );
  const headers = {
    'Content-Range': contentRange(1, 0),
    ...prefAppliedHeader(ctx, result.resolutionApplied ? ['resolution', 'return'] : ['return']),
  };
  // PostgREST 12: a merge that inserted no row (it updated) is 200; any other insert is 201.
  const merged = ctx.prefer.resolution === 'merge-duplicates' && !((result.inserted ?? 0) > 0);
  const answer = ctx.prefer.return === 'representation' ? result.body : null;
  return respond(ctx, merged ? 200 : 201, answer, headers);
}

export async function handleUpdate(c: Context, deps: RestDeps): Promise<Response> {
  const ctx = await requestContext(c, deps);
  const parsed = parseQuery(ctx.query, 'write');
  const body = await readJsonObject(c, null);
  const result = await execute(
    deps,
    ctx,
    (cache) => updatePlan(ctx, c.req.param('table')!, parsed, body, cache),
  );
  return mutationResponse(ctx, result, contentRange(0, result.pageTotal - 1));
}

export async function handleDelete(c: Context, deps: RestDeps): Promise<Response> {
  const ctx = await requestContext(c, deps);
  const parsed = parseQuery(ctx.query, 'write');
  const result = await execute(
    deps,
    ctx,
    (cache) => deletePlan(ctx, c.req.param('table')!, parsed, cache),
  );
  return mutationResponse(ctx, result, contentRange(1, 0));
}

function mutationResponse(ctx: RequestContext, result: Result, range: string): Response {
  const representation = ctx.prefer.return === 'representation';
  const headers = { 'Content-Range': range, ...prefAppliedHeader(ctx, ['return']) };
  return respond(ctx, representation ? 200 : 204, representation ? result.body : null, headers);
}
