import type pg from 'pg';

interface TransactionOptions {
  /** Commit at the end (default); tests pass false to roll back whatever happened. */
  commit?: boolean;
  /** Runs first inside the transaction, e.g. SET LOCAL ROLE. */
  prepare?: (client: pg.PoolClient) => Promise<void>;
}

/** `work` inside BEGIN … COMMIT on one pooled connection; ROLLBACK and rethrow on any error. */
export async function withTransaction<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    await options.prepare?.(client);
    const result = await work(client);
    await client.query(options.commit === false ? 'rollback' : 'commit');
    return result;
  } catch (error) {
    await client.query('rollback').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
