import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useTestDatabase } from '../helpers/database.ts';

const db = useTestDatabase();
const README = path.resolve(import.meta.dirname, '../../README.md');

describe('the README Quick start', () => {
  it('runs as written for the postgres role and gives the results its comments promise', async () => {
    const readme = await readFile(README, 'utf8');
    const start = readme.indexOf('## Quick start');
    const quickStart = readme.slice(start, readme.indexOf('\n## ', start + 1));
    const block = /```sql\n([\s\S]*?)```/.exec(quickStart)?.[1];
    expect(block).toBeDefined();
    const statements = block!
      .split(/;\s*(?:--[^\n]*)?\n/)
      .map((s) => s.replace(/^\s*--[^\n]*\n/gm, '').trim())
      .filter(Boolean);
    const results = await db().withClient(async (client) => {
      await client.query('set role postgres');
      const out = [];
      for (const statement of statements) out.push((await client.query(statement)).rows);
      await client.query('reset role');
      return out;
    });
    const selects = results.slice(-3);
    expect(selects[0]).toEqual([{
      full_name: 'Ada Lovelace',
      username: 'ada',
      created_via: 'trigger',
    }]);
    expect(selects[1]).toEqual([
      {
        backfill_missing_profiles: {
          scanned: 1,
          missing: 0,
          created: 0,
          failed: 0,
          done: true,
          dry_run: true,
          last_user_id: expect.any(String),
        },
      },
    ]);
    expect(selects[2]).toEqual([{ '?column?': 'ok' }]);
  });
});
