import type pg from 'pg';
import type { LocalKeys } from '../keys.ts';
import type { SchemaCache } from './schema-cache.ts';

export interface RestOptions {
  /** Logged in as authenticator (NOINHERIT, member of the API roles), as PostgREST connects. */
  pool: pg.Pool;
  keys: LocalKeys;
}

/** What every handler needs, built once per app. */
export interface RestDeps {
  pool: pg.Pool;
  keys: LocalKeys;
  cache: SchemaCache;
}
