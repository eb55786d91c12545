/**
 * Trace propagation: a table of W3C/B3 inputs and what the proxy forwards,
 * invalid inputs rejected per W3C Trace Context §3.2 and B3, and properties:
 * the parsers never throw on arbitrary headers, and inject → parse round-trips.
 */
import { strict as assert } from 'node:assert';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  childSpan,
  ensureRequestId,
  injectTraceContext,
  newRootSpan,
  parseB3Multi,
  parseB3Single,
  parseTraceContext,
  parseTraceState,
  parseTraceparent,
  type IncomingHeaders,
  type OutgoingHeaders,
  type SpanContext,
} from './trace-context.js';

const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const SPAN = '00f067aa0ba902b7';
const PARENT = 'b7ad6b7169203331';

/** What the proxy does per hop: parse, child span, inject into the upstream request. */
function hop(incoming: IncomingHeaders): {
  out: OutgoingHeaders;
  parent: SpanContext | undefined;
  span: SpanContext;
} {
  const parent = parseTraceContext(incoming);
  const span = childSpan(parent);
  const out: OutgoingHeaders = { ...incoming };
  injectTraceContext(out, span);
  return { out, parent, span };
}

test('propagation table: W3C or B3 in → W3C + B3 out, same trace id, new span id', () => {
  const cases: { name: string; in: IncomingHeaders; sampled: boolean; traceState?: string }[] = [
    {
      name: 'W3C sampled with tracestate',
      in: {
        traceparent: `00-${TRACE}-${SPAN}-01`,
        tracestate: 'congo=t61rcWkgMzE, rojo=00f067aa0ba902b7',
      },
      sampled: true,
      traceState: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7',
    },
    { name: 'W3C not sampled', in: { traceparent: `00-${TRACE}-${SPAN}-00` }, sampled: false },
    {
      name: 'W3C future version with extra field',
      in: { traceparent: `cc-${TRACE}-${SPAN}-01-what-the-future` },
      sampled: true,
    },
    { name: 'B3 single', in: { b3: `${TRACE}-${SPAN}-1-${PARENT}` }, sampled: true },
    { name: 'B3 single, not sampled', in: { b3: `${TRACE}-${SPAN}-0` }, sampled: false },
    {
      name: 'B3 multi',
      in: {
        'x-b3-traceid': TRACE,
        'x-b3-spanid': SPAN,
        'x-b3-parentspanid': PARENT,
        'x-b3-sampled': '1',
      },
      sampled: true,
    },
    {
      name: 'B3 multi, deferred sampling',
      in: { 'x-b3-traceid': TRACE, 'x-b3-spanid': SPAN },
      sampled: true,
    },
    {
      name: 'W3C wins over B3',
      in: {
        traceparent: `00-${TRACE}-${SPAN}-01`,
        'x-b3-traceid': 'a'.repeat(32),
        'x-b3-spanid': 'b'.repeat(16),
      },
      sampled: true,
    },
  ];
  for (const c of cases) {
    const { out, parent, span } = hop(c.in);
    assert.ok(parent, c.name);
    assert.equal(parent.traceId, TRACE, c.name);
    assert.equal(parent.spanId, SPAN, c.name);
    assert.equal(span.traceId, TRACE, c.name);
    assert.notEqual(span.spanId, SPAN, c.name);
    assert.match(span.spanId, /^[0-9a-f]{16}$/, c.name);
    assert.equal(span.parentSpanId, SPAN, c.name);
    assert.equal(out.traceparent, `00-${TRACE}-${span.spanId}-${c.sampled ? '01' : '00'}`, c.name);
    assert.equal(out.tracestate, c.traceState, c.name);
    assert.equal(out['x-b3-traceid'], TRACE, c.name);
    assert.equal(out['x-b3-spanid'], span.spanId, c.name);
    assert.equal(out['x-b3-parentspanid'], SPAN, c.name);
    assert.equal(out['x-b3-sampled'], c.sampled ? '1' : '0', c.name);
    if ('b3' in c.in)
      assert.equal(out.b3, `${TRACE}-${span.spanId}-${c.sampled ? '1' : '0'}-${SPAN}`, c.name);
    else assert.equal(out.b3, undefined, c.name);
  }
});

test('a 64-bit B3 trace id is left-padded to 128 bits', () => {
  const { out, parent } = hop({ 'x-b3-traceid': 'a3ce929d0e0e4736', 'x-b3-spanid': SPAN });
  assert.equal(parent?.traceId, '0000000000000000a3ce929d0e0e4736');
  assert.equal(out['x-b3-traceid'], '0000000000000000a3ce929d0e0e4736');
  assert.match(String(out.traceparent), /^00-0000000000000000a3ce929d0e0e4736-/);
});

test('B3 debug: d / x-b3-flags: 1 propagate as debug and sampled', () => {
  const single = parseB3Single(`${TRACE}-${SPAN}-d`);
  assert.equal(single?.debug, true);
  assert.equal(single.sampled, true);
  const multi = parseB3Multi({
    'x-b3-traceid': TRACE,
    'x-b3-spanid': SPAN,
    'x-b3-sampled': '0',
    'x-b3-flags': '1',
  });
  assert.equal(multi?.debug, true);
  assert.equal(multi.sampled, true);
  const out = injectTraceContext({ b3: 'stale' }, childSpan(multi));
  assert.equal(out['x-b3-flags'], '1');
  assert.equal(out['x-b3-sampled'], undefined);
  assert.match(String(out.b3), /-d-00f067aa0ba902b7$/);
  assert.match(String(out.traceparent), /-01$/);
});

test('invalid inputs yield no context', () => {
  const invalid: [string, IncomingHeaders][] = [
    ['no headers', {}],
    ['uppercase hex', { traceparent: `00-${TRACE.toUpperCase()}-${SPAN}-01` }],
    ['all-zero trace id', { traceparent: `00-${'0'.repeat(32)}-${SPAN}-01` }],
    ['all-zero parent id', { traceparent: `00-${TRACE}-${'0'.repeat(16)}-01` }],
    ['version ff', { traceparent: `ff-${TRACE}-${SPAN}-01` }],
    ['version 00 with extra data', { traceparent: `00-${TRACE}-${SPAN}-01-extra` }],
    ['short trace id', { traceparent: `00-${TRACE.slice(1)}-${SPAN}-01` }],
    ['wrong separators', { traceparent: `00_${TRACE}_${SPAN}_01` }],
    ['non-hex flags', { traceparent: `00-${TRACE}-${SPAN}-0x` }],
    [
      'repeated traceparent',
      { traceparent: [`00-${TRACE}-${SPAN}-01`, `00-${TRACE}-${PARENT}-01`] },
    ],
    ['b3 sampling only', { b3: '0' }],
    ['b3 bad sampling', { b3: `${TRACE}-${SPAN}-x` }],
    ['b3 zero span', { b3: `${TRACE}-${'0'.repeat(16)}` }],
    ['b3 too many fields', { b3: `${TRACE}-${SPAN}-1-${PARENT}-1` }],
    ['b3 multi missing span', { 'x-b3-traceid': TRACE }],
    ['b3 multi bad sampled', { 'x-b3-traceid': TRACE, 'x-b3-spanid': SPAN, 'x-b3-sampled': 'yes' }],
    ['b3 multi 24-digit trace', { 'x-b3-traceid': TRACE.slice(0, 24), 'x-b3-spanid': SPAN }],
  ];
  for (const [name, headers] of invalid) assert.equal(parseTraceContext(headers), undefined, name);
  // An invalid traceparent falls through to a valid B3 header.
  assert.equal(parseTraceContext({ traceparent: 'garbage', b3: `${TRACE}-${SPAN}` })?.format, 'b3');
});

test('tracestate: invalid is dropped, traceparent kept', () => {
  assert.equal(parseTraceState('a=1,b=2'), 'a=1,b=2');
  assert.equal(parseTraceState('tenant@vendor=x'), 'tenant@vendor=x');
  assert.equal(parseTraceState('UPPER=1'), undefined);
  assert.equal(parseTraceState('a=1,=2'), undefined);
  assert.equal(
    parseTraceState(Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(',')),
    undefined,
  );
  const ctx = parseTraceContext({ traceparent: `00-${TRACE}-${SPAN}-01`, tracestate: 'bad key=1' });
  assert.equal(ctx?.traceId, TRACE);
  assert.equal(ctx.traceState, undefined);
});

test('new roots and stale headers', () => {
  const root = newRootSpan();
  assert.match(root.traceId, /^[0-9a-f]{32}$/);
  assert.match(root.spanId, /^[0-9a-f]{16}$/);
  assert.equal(root.parentSpanId, undefined);
  assert.notEqual(newRootSpan().traceId, root.traceId);
  const out = injectTraceContext(
    { tracestate: 'old=1', 'x-b3-parentspanid': PARENT, 'x-b3-flags': '1', accept: '*/*' },
    root,
  );
  assert.equal(out.tracestate, undefined);
  assert.equal(out['x-b3-parentspanid'], undefined);
  assert.equal(out['x-b3-flags'], undefined);
  assert.equal(out.accept, '*/*');
  assert.equal(newRootSpan({ sampled: false }).sampled, false);
  assert.equal(childSpan(undefined, { sampled: false }).sampled, false);
});

test('ensureRequestId keeps a valid id and mints a UUIDv4 otherwise', () => {
  const kept = { 'x-request-id': 'a4cadca4-662f-4a9c-9f6b-5d1f0e2a1b3c' };
  assert.equal(ensureRequestId(kept), 'a4cadca4-662f-4a9c-9f6b-5d1f0e2a1b3c');
  const uuid4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  for (const bad of [undefined, '', 'has space', 'x'.repeat(129), ['a', 'b'], 'tab\there']) {
    const headers: Record<string, string | string[] | undefined> = { 'x-request-id': bad };
    const id = ensureRequestId(headers);
    assert.match(id, uuid4, JSON.stringify(bad));
    assert.equal(headers['x-request-id'], id);
  }
});

const hexString = (len: number): fc.Arbitrary<string> =>
  fc.string({
    unit: fc.constantFrom(...'0123456789abcdef'.split('')),
    minLength: len,
    maxLength: len,
  });
const spanContext: fc.Arbitrary<SpanContext> = fc
  .record({
    traceId: hexString(32).filter((s) => !/^0+$/.test(s)),
    spanId: hexString(16).filter((s) => !/^0+$/.test(s)),
    parentSpanId: fc.option(
      hexString(16).filter((s) => !/^0+$/.test(s)),
      { nil: undefined },
    ),
    sampled: fc.boolean(),
    traceState: fc.option(
      fc.constantFrom('a=1', 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7', 'x@y=z'),
      {
        nil: undefined,
      },
    ),
  })
  .map((r) => r);

test('property: parsers never throw on arbitrary header values', () => {
  const value = fc.oneof(
    fc.string(),
    fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF-xd ,='.split('')) }),
    fc.array(fc.string(), { maxLength: 3 }),
  );
  fc.assert(
    fc.property(
      fc.record(
        {
          traceparent: value,
          tracestate: value,
          b3: value,
          'x-b3-traceid': value,
          'x-b3-spanid': value,
          'x-b3-parentspanid': value,
          'x-b3-sampled': value,
          'x-b3-flags': value,
        },
        { requiredKeys: [] },
      ),
      (headers) => {
        const ctx = parseTraceContext(headers);
        if (ctx !== undefined) {
          assert.match(ctx.traceId, /^[0-9a-f]{32}$/);
          assert.match(ctx.spanId, /^[0-9a-f]{16}$/);
        }
        parseTraceparent(typeof headers.traceparent === 'string' ? headers.traceparent : undefined);
        parseTraceState(typeof headers.tracestate === 'string' ? headers.tracestate : undefined);
      },
    ),
    { numRuns: 2000 },
  );
});

test('property: inject → parse round-trips through each format', () => {
  fc.assert(
    fc.property(spanContext, (span) => {
      const out = injectTraceContext({}, span, { b3Single: true });
      const str = (k: string): string => String(out[k]);
      const w3c = parseTraceContext({
        traceparent: str('traceparent'),
        tracestate: out.tracestate as string | undefined,
      });
      assert.equal(w3c?.traceId, span.traceId);
      assert.equal(w3c.spanId, span.spanId);
      assert.equal(w3c.sampled, span.sampled);
      assert.equal(w3c.traceState, span.traceState);
      const single = parseTraceContext({ b3: str('b3') });
      const multi = parseTraceContext({
        'x-b3-traceid': str('x-b3-traceid'),
        'x-b3-spanid': str('x-b3-spanid'),
        'x-b3-sampled': str('x-b3-sampled'),
        ...(span.parentSpanId === undefined
          ? {}
          : { 'x-b3-parentspanid': str('x-b3-parentspanid') }),
      });
      for (const b of [single, multi]) {
        assert.equal(b?.traceId, span.traceId);
        assert.equal(b.spanId, span.spanId);
        assert.equal(b.parentSpanId, span.parentSpanId);
        assert.equal(b.sampled, span.sampled);
      }
    }),
    { numRuns: 500 },
  );
});
