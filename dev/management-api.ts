// A local stand-in for the part of Supabase's Management API (api.supabase.com) that the
// Supabase CLI commands of the guides talk to (`functions deploy --use-api`, `functions list`,
// `functions delete`, `secrets set`, `secrets list`, `secrets unset`), so the real CLI can run
// them with no account and no network, and a test can read exactly what it uploaded. Paths,
// status codes and JSON follow the Management API reference (v1-deploy-a-function,
// v1-bulk-update-functions, v1-list-all-functions, v1-delete-a-function, v1-get-project,
// v1-list-all-secrets, v1-bulk-create-secrets, v1-bulk-delete-secrets) and the exchanges
// recorded in supabase/cli apps/cli-e2e/fixtures; errors are `{"message": …}` as there.
//
// What the CLI does (supabase/cli apps/cli-go/pkg/function/deploy.go): one function is one
// POST /functions/deploy?slug=…, answered 201 and live at once; several are one
// POST …&bundleOnly=true each (bundled, not yet live), then one PUT /functions with the
// answers, which makes them live together. It lists functions only when config.toml leaves
// verify_jwt unset, and reads the project after a failed call.
//
// Secrets: `secrets set` is one POST /secrets with every name and value (201, no body),
// `secrets list` one GET /secrets, `secrets unset` one DELETE /secrets with the names (200, no
// body). The list answers each name with the SHA-256 digest of its value (hex) in place of the
// value, as the real API does (the CLI prints it as DIGEST). The stand-in keeps only that digest,
// so a value it was sent can never come back out of it, in an answer or in a test's output.
import { createHash, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { type Context, Hono } from 'hono';

/** One `file` part of a deploy, under the name the CLI gave it (a path from the project root). */
interface UploadedFile {
  path: string;
  content: Uint8Array;
}

/** The deploy's `metadata` part, as the CLI sends it. */
interface DeployMetadata {
  entrypoint_path: string;
  import_map_path?: string;
  static_patterns?: string[];
  verify_jwt?: boolean;
  name?: string;
}

export interface Deployment {
  id: string;
  slug: string;
  version: number;
  metadata: DeployMetadata;
  files: UploadedFile[];
  createdAt: number;
  updatedAt: number;
}

export interface ManagementApi {
  /** What a profile's api_url names. */
  readonly url: string;
  readonly port: number;
  readonly projectRef: string;
  readonly accessToken: string;
  /** Every request, in arrival order: method and path with its query string. */
  readonly requests: ReadonlyArray<{ method: string; url: string }>;
  /** What the project serves now, by slug: only deployments that went live. */
  live(): ReadonlyMap<string, Deployment>;
  /** The project's function secrets: name → SHA-256 digest (hex) of the value. */
  secrets(): ReadonlyMap<string, string>;
  close(): Promise<void>;
}

const SLUG = /^[A-Za-z][A-Za-z0-9_-]*$/;

/** What `value` is listed as: the SHA-256 digest of the value, in hex. */
export function secretDigest(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

/** CreateSecretBody's rules: a name of at most 256 characters not starting with SUPABASE_, a value of at most 24576. */
function secretsProblem(body: unknown): string | null {
  if (!Array.isArray(body) || body.length === 0) return 'Expected a non-empty array of secrets';
  for (const entry of body as Array<{ name?: unknown; value?: unknown }>) {
    if (typeof entry?.name !== 'string' || typeof entry.value !== 'string') {
      return 'Each secret needs a string name and value';
    }
    if (entry.name.length === 0 || entry.name.length > 256) {
      return 'Secret name must be 1 to 256 characters';
    }
    if (entry.name.startsWith('SUPABASE_')) {
      return 'Secret name must not start with the SUPABASE_ prefix.';
    }
    if (entry.value.length > 24576) return 'Secret value must be at most 24576 characters';
  }
  return null;
}

/** The Management API's FunctionResponse for a deployment. */
function functionResponse(d: Deployment) {
  return {
    id: d.id,
    slug: d.slug,
    name: d.metadata.name ?? d.slug,
    status: 'ACTIVE',
    version: d.version,
    created_at: d.createdAt,
    updated_at: d.updatedAt,
    verify_jwt: d.metadata.verify_jwt ?? true,
    import_map: Boolean(d.metadata.import_map_path),
    entrypoint_path: d.metadata.entrypoint_path,
    ...(d.metadata.import_map_path ? { import_map_path: d.metadata.import_map_path } : {}),
  };
}

const fail = (c: Context, status: 400 | 401 | 404, message: string) => c.json({ message }, status);

function parseMetadata(raw: string | File | null): DeployMetadata | string {
  if (typeof raw !== 'string') return 'metadata is required';
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return 'metadata must be JSON';
  }
  const meta = value as DeployMetadata;
  if (typeof meta !== 'object' || meta === null || typeof meta.entrypoint_path !== 'string') {
    return 'metadata.entrypoint_path is required';
  }
  return meta;
}

/**
 * Starts the stand-in on 127.0.0.1 (a free port unless given). It accepts only
 * `Authorization: Bearer <accessToken>` and knows only the project `projectRef`.
 */
export async function startManagementApi(
  options: { accessToken: string; projectRef: string; port?: number },
): Promise<ManagementApi> {
  const { accessToken, projectRef } = options;
  const requests: Array<{ method: string; url: string }> = [];
  const live = new Map<string, Deployment>();
  // Bundled with bundleOnly: kept by id and version until a bulk update makes them live.
  const bundled = new Map<string, Deployment>();
  const versions = new Map<string, number>();
  const ids = new Map<string, string>();
  // name → digest and when it was set; the values themselves are never kept.
  const secrets = new Map<string, { digest: string; updatedAt: string }>();

  const app = new Hono();
  app.use('*', async (c, next) => {
    const url = new URL(c.req.url);
    requests.push({ method: c.req.method, url: url.pathname + url.search });
    if (c.req.header('authorization') !== `Bearer ${accessToken}`) {
      return fail(c, 401, 'Unauthorized');
    }
    await next();
  });
  app.use('/v1/projects/:ref/*', async (c, next) => {
    if (c.req.param('ref') !== projectRef) return fail(c, 404, 'Project not found');
    await next();
  });

  app.get('/v1/projects/:ref', (c) => {
    if (c.req.param('ref') !== projectRef) return fail(c, 404, 'Project not found');
    return c.json({
      id: projectRef,
      ref: projectRef,
      organization_id: 'local-organization',
      name: 'local',
      region: 'local',
      created_at: new Date(0).toISOString(),
      status: 'ACTIVE_HEALTHY',
      database: {
        host: `db.${projectRef}.example.local`,
        version: '17',
        postgres_engine: '17',
        release_channel: 'ga',
      },
    });
  });

  app.get('/v1/projects/:ref/functions', (c) => c.json([...live.values()].map(functionResponse)));

  app.post('/v1/projects/:ref/functions/deploy', async (c) => {
    const form = await c.req.formData().catch(() => null);
    if (!form) return fail(c, 400, 'Expected a multipart/form-data body');
    const meta = parseMetadata(form.get('metadata'));
    if (typeof meta === 'string') return fail(c, 400, meta);
    const slug = c.req.query('slug') ?? meta.name;
    if (!slug || !SLUG.test(slug)) {
      return fail(
        c,
        400,
        'slug must start with a letter and contain only letters, digits, "_" and "-"',
      );
    }
    const files: UploadedFile[] = [];
    for (const part of form.getAll('file')) {
      if (typeof part === 'string') return fail(c, 400, 'file parts must be files');
      files.push({ path: part.name, content: new Uint8Array(await part.arrayBuffer()) });
    }
    const names = new Set(files.map((f) => f.path));
    if (!names.has(meta.entrypoint_path)) {
      return fail(c, 400, `Entrypoint ${meta.entrypoint_path} was not uploaded`);
    }
    if (meta.import_map_path && !names.has(meta.import_map_path)) {
      return fail(c, 400, `Import map ${meta.import_map_path} was not uploaded`);
    }

    const now = Date.now();
    const id = ids.get(slug) ?? randomUUID();
    ids.set(slug, id);
    const version = (versions.get(slug) ?? 0) + 1;
    versions.set(slug, version);
    const deployment: Deployment = {
      id,
      slug,
      version,
      metadata: meta,
      files,
      createdAt: live.get(slug)?.createdAt ?? now,
      updatedAt: now,
    };
    if (c.req.query('bundleOnly') === 'true' || c.req.query('bundleOnly') === '1') {
      bundled.set(`${id}@${version}`, deployment);
    } else live.set(slug, deployment);
    return c.json(functionResponse(deployment), 201);
  });

  app.delete('/v1/projects/:ref/functions/:slug', (c) => {
    const slug = c.req.param('slug');
    if (!live.delete(slug)) return fail(c, 404, `Function ${slug} not found`);
    ids.delete(slug);
    versions.delete(slug);
    return c.json({ message: 'ok' }, 200);
  });

  app.get(
    '/v1/projects/:ref/secrets',
    (c) =>
      c.json(
        [...secrets].map(([name, { digest, updatedAt }]) => ({
          name,
          value: digest,
          updated_at: updatedAt,
        })),
      ),
  );

  app.post('/v1/projects/:ref/secrets', async (c) => {
    const body = (await c.req.json().catch(() => null)) as
      | Array<{ name: string; value: string }>
      | null;
    const problem = secretsProblem(body);
    if (problem) return fail(c, 400, problem);
    const updatedAt = new Date().toISOString();
    for (const { name, value } of body!) {
      secrets.set(name, { digest: secretDigest(value), updatedAt });
    }
    return c.body(null, 201);
  });

  app.delete('/v1/projects/:ref/secrets', async (c) => {
    const names = (await c.req.json().catch(() => null)) as unknown;
    if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) {
      return fail(c, 400, 'Expected an array of secret names');
    }
    for (const name of names as string[]) secrets.delete(name);
    return c.body(null, 200);
  });

  app.put('/v1/projects/:ref/functions', async (c) => {
    const body = (await c.req.json().catch(() => null)) as
      | Array<{ id?: string; version?: number }>
      | null;
    if (!Array.isArray(body)) return fail(c, 400, 'Expected an array of functions');
    // The real API would also take metadata-only updates; a stand-in can serve only what it holds the files of.
    const found = body.map((f) => bundled.get(`${f.id}@${f.version}`));
    const missing = body.filter((_, i) => !found[i]);
    if (missing.length > 0) {
      return fail(
        c,
        400,
        `No bundle for ${missing.map((f) => `${f.id}@${f.version}`).join(', ')}`,
      );
    }
    for (const d of found) {
      live.set(d!.slug, d!);
      bundled.delete(`${d!.id}@${d!.version}`);
    }
    return c.json({ functions: found.map((d) => functionResponse(d!)) });
  });

  app.notFound((c) => fail(c, 404, 'Not Found'));

  const server: ServerType = await new Promise((resolve) => {
    const s = serve(
      { fetch: app.fetch, port: options.port ?? 0, hostname: '127.0.0.1' },
      () => resolve(s),
    );
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    projectRef,
    accessToken,
    requests,
    live: () => live,
    secrets: () => new Map([...secrets].map(([name, { digest }]) => [name, digest])),
    close: () =>
      new Promise<void>((resolve) => {
        // A keep-alive connection the CLI left open must not hold the close.
        (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}
