// The PostgREST stand-in alone (dev/rest) on a free port, for the tests of its wire format.
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { Hono } from 'hono';
import type pg from 'pg';
import type { LocalKeys } from '../../dev/keys.ts';
import { createRestApp } from '../../dev/rest/app.ts';

export interface RunningRest {
  url: string;
  close: () => Promise<void>;
}

/** Serves /rest/v1 over pool (connected as authenticator) until close(). */
export async function startRest(pool: pg.Pool, keys: LocalKeys): Promise<RunningRest> {
  const app = new Hono().route('/rest/v1', createRestApp({ pool, keys }));
  return await new Promise((resolve) => {
    const server: ServerType = serve(
      { fetch: app.fetch, port: 0, hostname: '127.0.0.1' },
      (info: AddressInfo) =>
        resolve({
          url: `http://127.0.0.1:${info.port}`,
          close: () => new Promise<void>((done) => server.close(() => done())),
        }),
    );
  });
}
