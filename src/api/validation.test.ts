import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Type } from '@sinclair/typebox';
import { createValidator, formatIssue, parseManifests, pointerToPath } from './index.js';

const Schema = Type.Object(
  {
    spec: Type.Object(
      {
        rules: Type.Array(
          Type.Object(
            { principals: Type.Array(Type.String({ minLength: 1 })) },
            { additionalProperties: false },
          ),
        ),
        action: Type.Optional(Type.Union([Type.Literal('ALLOW'), Type.Literal('DENY')])),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

test('pointerToPath renders JSON pointers as field paths', () => {
  assert.equal(pointerToPath('/spec/rules/0/from/1'), 'spec.rules[0].from[1]');
  assert.equal(
    pointerToPath('/metadata/labels/app.kubernetes.io~1name'),
    'metadata.labels["app.kubernetes.io/name"]',
  );
});

test('a validator reports every problem with its path, unknown fields included', () => {
  const validate = createValidator(Schema);
  const r = validate({
    spec: { rules: [{ principals: ['a', ''] }, { bogus: 1, principals: [] }], extra: true },
  });
  assert.equal(r.ok, false);
  assert.ok(!r.ok);
  const messages = r.issues.map(formatIssue);
  assert.ok(
    messages.includes('spec.rules[0].principals[1]: must not be empty'),
    messages.join('\n'),
  );
  assert.ok(
    messages.includes('spec.rules[1].bogus: unknown field (not supported by this kind)'),
    messages.join('\n'),
  );
  assert.ok(
    messages.includes('spec.extra: unknown field (not supported by this kind)'),
    messages.join('\n'),
  );
});

test('parseManifests splits documents and names the file and line on a syntax error', () => {
  const docs = parseManifests('a: 1\n---\n---\nb: 2\n', 'x.yaml');
  assert.deepEqual(
    docs.map((d) => d.object),
    [{ a: 1 }, { b: 2 }],
  );
  assert.throws(() => parseManifests('a: [1\n', 'bad.yaml'), /bad\.yaml:\d+/);
  assert.throws(() => parseManifests('a: 1\na: 2\n', 'dup.yaml'), /dup\.yaml/);
});
