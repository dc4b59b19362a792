// POST /rpc/:fn (JSON object of named arguments) and GET /rpc/:fn?arg=value, as PostgREST calls
// functions: the function is chosen from the schema cache by name and argument names (overloads
// included), arguments are passed by name and bound as parameters, typed by the function's own
// declaration (json_to_record for a JSON body, `$n::type` for query-string values). Volatile
// functions run in a read-write transaction only when called with POST.
import type { Context } from 'hono';
import type pg from 'pg';
import { isPlainObject, readJsonBody, type JsonBody } from './body.ts';
import { invalidBody, notImplemented, RestError, singularityError, rangeNotSatisfiable } from './errors.ts';
import { closest } from './fuzzy.ts';
import { parseQuery, type ParsedQuery } from './query-params.ts';
import { contentRange, prefAppliedHeader, rangeStatus, respond } from './respond.ts';
import { bodySql, ident, limitSql, orderSql, Params, qualified, RESPONSE_GUCS_SQL, selectListSql, toReadResult, whereSql, type ReadResult, type ResultRow } from './sql.ts';
import { execute, type Planned } from './transaction.ts';
import { requestContext, type RequestContext } from './request-context.ts';
import { qualifiedKey, type Routine, type RoutineParam, type SchemaCacheData } from './schema-cache.ts';
import type { RestDeps } from './deps.ts';

type CallArgs = { kind: 'json'; body: JsonBody } | { kind: 'query'; values: Map<string, string[]> };

function isSingleUnnamedJson(routine: Routine): boolean {
  return routine.params.length === 1 && routine.params[0]!.name === '';
}

/** PostgREST's matchesParams: every required parameter given, nothing given that is not a parameter. */
function matchesParams(routine: Routine, keys: Set<string>): boolean {
  if (routine.params.length === 0) return keys.size === 0;
  if (isSingleUnnamedJson(routine)) return false;
  const names = new Set(routine.params.map((p) => p.name));
  return [...keys].every((k) => names.has(k)) && routine.params.every((p) => !p.required || keys.has(p.name));
}

function describe(routine: Routine): string {
  return `${routine.schema}.${routine.name}(${routine.params.map((p) => `${p.name} => ${p.type}`).join(', ')})`;
}

function noFunction(schema: string, name: string, keys: string[], isPost: boolean, cache: SchemaCacheData): RestError {
  const func = `${schema}.${name}`;
  const list = keys.join(', ');
  const withParams = keys.length === 0 ? ' without parameters' : ` with parameter${keys.length > 1 ? 's' : ''} ${list}`;
  const overloads = cache.routines.get(qualifiedKey(schema, name)) ?? [];
  let hint: string | null = null;
  if (overloads.length > 0) {
    const paramList = (names: string[]) => `(${[...names].sort().join(', ')})`;
    const best = closest(paramList(keys), overloads.map((r) => paramList(r.params.map((p) => p.name))), 0.33);
    if (best !== null) hint = `Perhaps you meant to call the function ${func}${best}`;
  } else {
    const names = [...cache.routines.values()].flatMap((rs) => rs.filter((r) => r.schema === schema).map((r) => r.name));
    const best = closest(name, names, 0.75);
    if (best !== null) hint = `Perhaps you meant to call the function ${schema}.${best}`;
  }
  return new RestError(
    404,
    {
      code: 'PGRST202',
      message: `Could not find the function ${func}${keys.length === 0 ? ' without parameters' : `(${list})`} in the schema cache`,
      details: `Searched for the function ${func}${withParams}${isPost ? ' or with a single unnamed json/jsonb parameter' : ''}, but no matches were found in the schema cache.`,
      hint,
    },
    { cacheMiss: true },
  );
}

/** PostgREST's findProc: named-argument matches first, then a single unnamed json/jsonb parameter (POST only). */
export function findRoutine(cache: SchemaCacheData, schema: string, name: string, keys: Set<string>, isPost: boolean): Routine {
  const candidates = cache.routines.get(qualifiedKey(schema, name)) ?? [];
  const matches = candidates.filter((r) => matchesParams(r, keys));
  const fallbacks = isPost ? candidates.filter(isSingleUnnamedJson) : [];
  const chosen = matches.length > 0 ? matches : fallbacks;
  if (chosen.length === 1) return chosen[0]!;
  if (chosen.length > 1) {
    throw new RestError(300, {
      code: 'PGRST203',
      message: `Could not choose the best candidate function between: ${chosen.map(describe).join(', ')}`,
      hint: 'Try renaming the parameters or the function itself in the database so function overloading can be resolved',
    });
  }
  throw noFunction(schema, name, [...keys].sort(), isPost, cache);
}

// A query-string value for an array (VARIADIC) parameter: repeated keys, or one array literal.
function arrayValue(values: string[]): string {
  if (values.length === 1 && /^\{.*\}$/s.test(values[0]!)) return values[0]!;
  return `{${values.map((v) => `"${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',')}}`;
}

/** The FROM clause calling the function, exposing its result as pgrst_call(.pgrst_scalar). */
function callFromSql(routine: Routine, args: CallArgs, keys: Set<string>, params: Params): string {
  const callee = qualified(routine.schema, routine.name);
  const given = routine.params.filter((p) => keys.has(p.name));
  const call = (argumentList: string) =>
    routine.returnsComposite ? `${callee}(${argumentList}) pgrst_call` : `lateral (select ${callee}(${argumentList}) pgrst_scalar) pgrst_call`;
  const named = (p: RoutineParam, value: string) => `${p.variadic ? 'variadic ' : ''}${ident(p.name)} := ${value}`;

  if (args.kind === 'json' && isSingleUnnamedJson(routine)) {
    return call(`${params.add(args.body.raw)}::${routine.params[0]!.type}`);
  }
  if (given.length === 0) return call('');
  if (args.kind === 'json') {
    const payload = params.add(args.body.raw);
    const columns = given.map((p) => ident(p.name)).join(', ');
    const typed = given.map((p) => `${ident(p.name)} ${p.type}`).join(', ');
    return (
      `(select ${payload}::json as json_data) pgrst_payload, ` +
      `lateral (select ${columns} from json_to_record(pgrst_payload.json_data) as _(${typed})) pgrst_body, ` +
      call(given.map((p) => named(p, `pgrst_body.${ident(p.name)}`)).join(', '))
    );
  }
  return call(
    given
      .map((p) => {
        const values = args.values.get(p.name)!;
        const value = p.variadic ? arrayValue(values) : values[values.length - 1]!;
        return named(p, `${params.add(value)}::${p.type}`);
      })
      .join(', '),
  );
}

function planCall(
  ctx: RequestContext,
  name: string,
  args: CallArgs,
  parsed: ParsedQuery,
  cache: SchemaCacheData,
): Planned<{ routine: Routine; result: ReadResult }> {
  const isPost = args.kind === 'json';
  const keys = new Set(args.kind === 'json' ? (isPlainObject(args.body.value) ? Object.keys(args.body.value) : []) : args.values.keys());
  const routine = findRoutine(cache, ctx.schema, name, keys, isPost);
  if (args.kind === 'json' && !isSingleUnnamedJson(routine) && !isPlainObject(args.body.value)) {
    throw invalidBody('The function arguments must be a JSON object', 'Calling a function once per element of a JSON array is not supported by the local PostgREST stand-in.');
  }

  const params = new Params();
  const scalar = !routine.returnsComposite;
  const source = `select ${scalar ? 'pgrst_call.pgrst_scalar' : 'pgrst_call.*'} from ${callFromSql(routine, args, keys, params)}`;
  if (scalar && (parsed.filters.length > 0 || parsed.order.length > 0 || parsed.select.some((s) => s.column !== '*'))) {
    throw notImplemented('select, filters and order apply to functions returning rows; this function returns a scalar');
  }
  const where = whereSql(parsed.filters, 'pgrst_source', params);
  const limit = limitSql(parsed.range, params);
  const inner = scalar
    ? `select pgrst_source.pgrst_scalar from pgrst_source${limit}`
    : `select ${selectListSql(parsed.select, 'pgrst_source')} from pgrst_source${where}${orderSql(parsed.order, 'pgrst_source')}${limit}`;
  const pageTotal = routine.returnsSet ? 'pg_catalog.count(_postgrest_t)' : '1';
  const total = !ctx.prefer.count ? 'null' : limit === '' ? pageTotal : `(select pg_catalog.count(*) from pgrst_source${where})`;
  const body = routine.returnsVoid
    ? `'null'::json`
    : bodySql({ single: ctx.media.singular || !routine.returnsSet, scalar, stripNulls: ctx.media.stripNulls });
  const text =
    `with pgrst_source as (${source}) ` +
    `select ${total}::bigint as total_result_set, ${pageTotal}::bigint as page_total, ${body}::text as body, ${RESPONSE_GUCS_SQL} ` +
    `from (${inner}) _postgrest_t`;

  return {
    // PostgREST runs GET calls, and calls of stable or immutable functions, read-only.
    readOnly: !isPost || routine.volatility !== 'volatile',
    async run(client: pg.PoolClient) {
      const { rows } = await client.query<ResultRow>(text, params.values);
      const result = toReadResult(rows[0]);
      if (ctx.media.singular && result.pageTotal !== 1) throw singularityError(result.pageTotal);
      return { value: { routine, result }, gucs: result.gucs };
    },
  };
}

export async function handleRpc(c: Context, deps: RestDeps): Promise<Response> {
  const name = c.req.param('fn')!;
  const ctx = await requestContext(c, deps, `/rpc/${name}`);
  const parsed = parseQuery(ctx.query);
  let args: CallArgs;
  if (ctx.method === 'POST') {
    args = { kind: 'json', body: await readJsonBody(c, '{}') };
  } else {
    const values = new Map<string, string[]>();
    for (const [key, value] of parsed.plain) values.set(key, [...(values.get(key) ?? []), value]);
    args = { kind: 'query', values };
  }

  const outcome = await execute(deps, ctx, (cache) => planCall(ctx, name, args, parsed, cache));
  const { routine, result } = outcome.value;
  const lower = parsed.range.offset;
  const upper = lower + result.pageTotal - 1;
  const headers = { 'Content-Range': contentRange(lower, upper, result.total), ...prefAppliedHeader(ctx, ['count']) };
  if (routine.returnsVoid) return respond(ctx, outcome, 204, null, headers);
  const status = rangeStatus(lower, upper, result.total);
  if (status === 416) throw rangeNotSatisfiable(lower, result.total ?? 0);
  return respond(ctx, outcome, status, result.body, headers);
}
