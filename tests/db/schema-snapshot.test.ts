import { describe, expect, it } from 'vitest';
import { catalogSummary } from '../helpers/catalog.ts';
import { useTestDatabase } from '../helpers/database.ts';

const db = useTestDatabase();

// One line per object the migrations own (tests/helpers/catalog.ts, the summary). Function bodies
// are compared as written (an md5 of prosrc), so the same snapshot holds on PostgreSQL 15 and 17;
// the full text of every definition is in supabase/schemas/, which
// tests/db/declarative-schema.test.ts proves equal to the migrations.
describe('the migrated schema', () => {
  it('matches the committed snapshot (run `npx vitest run -u` after a deliberate schema change)', async () => {
    await expect(await catalogSummary(db())).toMatchFileSnapshot('./__snapshots__/schema.txt');
  });
});
