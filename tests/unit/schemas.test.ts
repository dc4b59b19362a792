import { describe, expect, it } from 'vitest';
import { fieldErrors, RegisterBody } from '../../shared/schemas.ts';

function errorsOf(body: unknown) {
  const result = RegisterBody.safeParse(body);
  return result.success ? null : fieldErrors(result.error, body);
}

describe('RegisterBody', () => {
  it('accepts a full body and normalises the email', () => {
    expect(
      RegisterBody.parse({
        email: '  Ada@Example.COM ',
        password: 'correct horse',
        full_name: ' Ada Lovelace ',
        username: 'ada_l',
        avatar_url: 'https://example.com/a.png',
        metadata: { plan: 'pro' },
      }),
    ).toEqual({
      email: 'ada@example.com',
      password: 'correct horse',
      full_name: 'Ada Lovelace',
      username: 'ada_l',
      avatar_url: 'https://example.com/a.png',
      metadata: { plan: 'pro' },
    });
  });

  it('names each bad field with a clear message', () => {
    expect(
      errorsOf({
        email: 'not-an-email',
        password: 7,
        username: 'a b',
        avatar_url: 'javascript:x',
        metadata: [1],
        role: 'admin',
      }),
    ).toEqual({
      email: 'must be a valid email address',
      password: 'must be a string',
      username:
        'must be 3-39 letters, digits, "_", "." or "-", not starting or ending with "." or "-"',
      avatar_url: 'must be an http(s) URL of at most 2048 characters',
      metadata: 'must be a JSON object',
      role: 'is not a known field',
    });
  });

  it('refuses metadata nested deeper than 32 levels with a 400 message, even 5,000 levels deep', () => {
    const nest = (levels: number) => {
      const root: Record<string, unknown> = {};
      let node = root;
      for (let i = 1; i < levels; i++) node = (node.a = {}) as Record<string, unknown>;
      return root;
    };
    expect(errorsOf({ email: 'a@b.co', password: 'secret-1', metadata: nest(32) })).toBeNull();
    for (const levels of [33, 5000]) {
      expect(errorsOf({ email: 'a@b.co', password: 'secret-1', metadata: nest(levels) })).toEqual({
        metadata: 'must be nested at most 32 levels deep',
      });
    }
  });

  it('refuses metadata with a key named __proto__, constructor or prototype at any depth, naming the key and where it is', () => {
    const cases: Array<[string, string]> = [
      [
        '{"__proto__": {"polluted": true}, "kept": 1}',
        'must not contain the key "__proto__" (at metadata)',
      ],
      [
        '{"a": {"b": {"constructor": {"prototype": 1}}}}',
        'must not contain the key "constructor" (at metadata.a.b)',
      ],
      [
        '{"list": [1, {"x": [{"prototype": null}]}]}',
        'must not contain the key "prototype" (at metadata.list[1].x[0])',
      ],
      [
        '{"odd key": {"constructor": 1}}',
        'must not contain the key "constructor" (at metadata["odd key"])',
      ],
    ];
    for (const [metadata, message] of cases) {
      expect(errorsOf({ email: 'a@b.co', password: 'secret-1', metadata: JSON.parse(metadata) }))
        .toEqual({ metadata: message });
    }
  });

  it('accepts those words as values, in other letter cases and inside longer keys', () => {
    const metadata = {
      role: 'constructor',
      Constructor: 1,
      PROTOTYPE: 2,
      __proto: 3,
      prototypes: [{ constructor_id: 4 }],
    };
    expect(RegisterBody.parse({ email: 'a@b.co', password: 'secret-1', metadata }).metadata)
      .toEqual(metadata);
  });

  it('says which fields are required', () => {
    expect(errorsOf({})).toEqual({ email: 'is required', password: 'is required' });
  });

  it('rejects a non-object body as a whole', () => {
    expect(errorsOf([])).toEqual({ body: 'must be a JSON object' });
    expect(errorsOf('text')).toEqual({ body: 'must be a JSON object' });
  });

  it("rejects a password past bcrypt's 72 bytes, counting bytes not characters", () => {
    expect(errorsOf({ email: 'a@b.co', password: 'é'.repeat(37) })).toEqual({
      password: 'must be at most 72 bytes',
    });
    expect(errorsOf({ email: 'a@b.co', password: 'é'.repeat(36) })).toBeNull();
  });
});
