// POST /rpc/:fn with a JSON object of named arguments, as PostgREST calls functions: the function
// is chosen from the schema cache by name and argument names, the arguments are passed by name and
// bound as one JSON parameter typed by the function's own declaration (json_to_record), and the
// answer is its JSON value (200) or nothing for a void function (204). Stable and immutable
// functions run in a read-only transaction, as PostgREST runs them.
import type { Context } from 'hono';
import type pg from 'pg';
import { type JsonObjectBody, readJsonObject } from './body.ts';
import { notImplemented, RestError } from './errors.ts';
import { closest } from './fuzzy.ts';
import { contentRange, respond } from './respond.ts';
import { bodySql, ident, Params, qualified, type Result, type ResultRow, toResult } from './sql.ts';
import { execute, type Planned } from './transaction.ts';
import { EXPOSED_SCHEMA, requestContext } from './request-context.ts';
import type { Routine, SchemaCacheData } from './schema-cache.ts';
import type { RestDeps } from './deps.ts';

/** PostgREST's matchesParams: every required parameter given, nothing given that is not a parameter. */
function matchesParams(routine: Routine, keys: Set<string>): boolean {
  const names = new Set(routine.params.map((p) => p.name));
  return [...keys].every((k) => names.has(k)) &&
    routine.params.every((p) => !p.required || keys.has(p.name));
}

function noFunction(name: string, keys: string[], cache: SchemaCacheData): RestError {
  const func = `${EXPOSED_SCHEMA}.${name}`;
  const list = keys.join(', ');
  const withParams = keys.length === 0
    ? ' without parameters'
    : ` with parameter${keys.length > 1 ? 's' : ''} ${list}`;
  const best = cache.routines.has(name) ? null : closest(name, cache.routines.keys(), 0.75);
  return new RestError(
    404,
    {
      code: 'PGRST202',
      message: `Could not find the function ${func}${
        keys.length === 0 ? ' without parameters' : `(${list})`
      } in the schema cache`,
      details:
        `Searched for the function ${func}${withParams} or with a single unnamed json/jsonb parameter, but no matches were found in the schema cache.`,
      hint: best === null
        ? null
        : `Perhaps you meant to call the function ${EXPOSED_SCHEMA}.${best}`,
    },
    { cacheMiss: true },
  );
}

/** PostgREST's findProc, for functions whose arguments are all named. */
function findRoutine(cache: SchemaCacheData, name: string, keys: Set<string>): Routine {
  const matches = (cache.routines.get(name) ?? []).filter((r) => matchesParams(r, keys));
  if (matches.length > 1) {
    throw notImplemented(
      `choosing between overloads of ${name} is not supported by the local PostgREST stand-in`,
    );
  }
  if (matches.length === 0) throw noFunction(name, [...keys].sort(), cache);
  return matches[0]!;
}

function planCall(
  name: string,
  body: JsonObjectBody,
  cache: SchemaCacheData,
): Planned<{ routine: Routine; result: Result }> {
  const keys = new Set(body.keys);
  const routine = findRoutine(cache, name, keys);
  const params = new Params();
  const given = routine.params.filter((p) => keys.has(p.name));
  const callee = qualified(EXPOSED_SCHEMA, routine.name);
  const call = (args: string) => `lateral (select ${callee}(${args}) pgrst_scalar) pgrst_call`;
  const source = given.length === 0
    ? call('')
    : `(select ${params.add(body.raw)}::json as json_data) pgrst_payload, ` +
      `lateral (select ${
        given.map((p) => ident(p.name)).join(', ')
      } from json_to_record(pgrst_payload.json_data) ` +
      `as _(${given.map((p) => `${ident(p.name)} ${p.type}`).join(', ')})) pgrst_body, ` +
      call(given.map((p) => `${ident(p.name)} := pgrst_body.${ident(p.name)}`).join(', '));
  const answer = routine.returnsVoid ? `'null'::json` : bodySql('scalar');
  const text = `with pgrst_source as (select pgrst_call.pgrst_scalar from ${source}) ` +
    `select 1::bigint as page_total, ${answer}::text as body from (select pgrst_source.pgrst_scalar from pgrst_source) _postgrest_t`;
  return {
    readOnly: routine.volatility !== 'volatile',
    async run(client: pg.PoolClient) {
      const { rows } = await client.query<ResultRow>(text, params.values);
      return { routine, result: toResult(rows[0]) };
    },
  };
}

export async function handleRpc(c: Context, deps: RestDeps): Promise<Response> {
  const name = c.req.param('fn')!;
  const ctx = await requestContext(c, deps);
  if (ctx.query.size > 0) {
    throw notImplemented(
      'query parameters on /rpc (filters, select, limit, GET arguments) are not supported by the local PostgREST stand-in',
    );
  }
  const body = await readJsonObject(c, '{}');
  const { routine, result } = await execute(deps, ctx, (cache) => planCall(name, body, cache));
  // Accept: application/vnd.pgrst.object+json changes only the Content-Type (respond.ts): PostgREST
  // counts what a function returns as one row when it is not a set, so it is never 406 here.
  const headers = { 'Content-Range': contentRange(0, 0) };
  return routine.returnsVoid
    ? respond(ctx, 204, null, headers)
    : respond(ctx, 200, result.body, headers);
}
