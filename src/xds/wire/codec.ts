/**
 * Protocol Buffers wire format for xDS messages, driven by the compact schema
 * (./schema.ts). Decoding yields the same plain objects the control plane's
 * protobufjs gives with `{ longs: String, enums: String, defaults: false,
 * oneofs: true, json: true }`: proto field names, 64-bit integers as decimal
 * strings, enums by name (unknown numbers as numbers), bytes as Buffers,
 * non-finite floats as strings, the oneof member's name under the oneof's
 * name, and `google.protobuf.Any` as `{ ...fields, '@type': typeUrl }` when
 * its type is known. Input is hostile: every length is checked against the
 * buffer, a field's wire type must match its declared type, groups are
 * refused, nesting is bounded, and any violation is an Error naming the
 * message and field — never a partial object.
 */
import { I32, I64, LEN, messageInfo, VARINT, type FieldInfo, type MessageInfo } from './schema.js';

/** Nesting limit, as protobufjs's `util.recursionLimit`. */
const MAX_DEPTH = 100;
const ANY = 'google.protobuf.Any';
const DEFAULT_TYPE_PREFIX = 'type.googleapis.com/';

class Reader {
  pos: number;
  constructor(
    readonly buf: Buffer,
    start: number,
    readonly end: number,
  ) {
    this.pos = start;
  }

  varint(): bigint {
    let result = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) throw new Error('truncated varint');
      const byte = this.buf[this.pos++] ?? 0;
      result |= BigInt(byte & 0x7f) << shift;
      if ((byte & 0x80) === 0) return BigInt.asUintN(64, result);
      shift += 7n;
    }
    throw new Error('varint longer than 10 bytes');
  }

  /** A varint that must fit 32 bits unsigned (tags and lengths). */
  small(): number {
    const { buf, end } = this;
    let result = 0;
    for (let i = 0; i < 5; i++) {
      if (this.pos >= end) throw new Error('truncated varint');
      const byte = buf[this.pos++] ?? 0;
      if (i === 4 && byte > 0x0f) throw new Error('length or tag out of range');
      result += (byte & 0x7f) * 2 ** (7 * i);
      if ((byte & 0x80) === 0) return result;
    }
    throw new Error('length or tag out of range');
  }

  /** A varint's low 32 bits, unsigned (int32, uint32, bool, enum: longer encodings are truncated). */
  low32(): number {
    const { buf, end } = this;
    let result = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= end) throw new Error('truncated varint');
      const byte = buf[this.pos++] ?? 0;
      if (i < 5) result = (result | ((byte & 0x7f) << (7 * i))) >>> 0;
      if ((byte & 0x80) === 0) return result;
    }
    throw new Error('varint longer than 10 bytes');
  }

  take(length: number): number {
    const start = this.pos;
    if (length > this.end - start) throw new Error('truncated field');
    this.pos += length;
    return start;
  }
}

function scalar(field: FieldInfo, reader: Reader): unknown {
  const { buf } = reader;
  switch (field.type) {
    case 'int32':
      return reader.low32() | 0;
    case 'uint32':
      return reader.low32();
    case 'sint32': {
      const n = reader.low32();
      return ((n >>> 1) ^ -(n & 1)) | 0;
    }
    case 'bool':
      return reader.low32() !== 0;
    case 'int64':
      return BigInt.asIntN(64, reader.varint()).toString();
    case 'uint64':
      return reader.varint().toString();
    case 'sint64': {
      const n = reader.varint();
      return ((n >> 1n) ^ -(n & 1n)).toString();
    }
    case 'fixed64':
      return buf.readBigUInt64LE(reader.take(8)).toString();
    case 'sfixed64':
      return buf.readBigInt64LE(reader.take(8)).toString();
    case 'double':
      return finite(buf.readDoubleLE(reader.take(8)));
    case 'fixed32':
      return buf.readUInt32LE(reader.take(4));
    case 'sfixed32':
      return buf.readInt32LE(reader.take(4));
    case 'float':
      return finite(buf.readFloatLE(reader.take(4)));
    case 'string': {
      const length = reader.small();
      const start = reader.take(length);
      return buf.toString('utf8', start, start + length);
    }
    case 'bytes': {
      const length = reader.small();
      const start = reader.take(length);
      return Buffer.from(buf.subarray(start, start + length));
    }
    default:
      throw new Error(`unknown scalar type ${field.type}`);
  }
}

function finite(value: number): number | string {
  return Number.isFinite(value) ? value : String(value);
}

/** One value of `field` (not a packed run): a scalar, enum name or nested message. */
function value(field: FieldInfo, reader: Reader, depth: number): unknown {
  if (field.enumInfo !== undefined) {
    const number = reader.low32() | 0;
    return field.enumInfo.names.get(number) ?? number;
  }
  if (field.message) {
    const length = reader.small();
    const start = reader.take(length);
    return decodeAt(field.type, reader.buf, start, start + length, depth + 1);
  }
  return scalar(field, reader);
}

function skip(reader: Reader, wireType: number): void {
  switch (wireType) {
    case VARINT:
      reader.low32();
      return;
    case I64:
      reader.take(8);
      return;
    case LEN:
      reader.take(reader.small());
      return;
    case I32:
      reader.take(4);
      return;
    default:
      throw new Error(`wire type ${String(wireType)} is not supported`);
  }
}

/** A map field's entry fields (the schema builds them with the field). */
function entryOf(field: FieldInfo): readonly [FieldInfo, FieldInfo] {
  if (field.entry === undefined) throw new Error(`${field.name}: not a map field`);
  return field.entry;
}

function mapEntry(
  field: FieldInfo,
  reader: Reader,
  depth: number,
  into: Record<string, unknown>,
): void {
  const length = reader.small();
  const start = reader.take(length);
  const entry = new Reader(reader.buf, start, start + length);
  const [keyField, valueField] = entryOf(field);
  let key: unknown = defaultOf(keyField);
  let item: unknown;
  while (entry.pos < entry.end) {
    const tag = entry.small();
    const number = tag >>> 3;
    const wireType = tag & 7;
    const target = number === 1 ? keyField : number === 2 ? valueField : undefined;
    if (target === undefined) {
      skip(entry, wireType);
      continue;
    }
    if (wireType !== target.wireType)
      throw new Error(
        `map ${field.name}: entry field ${String(number)} has wire type ${String(wireType)}`,
      );
    if (number === 1) key = scalar(keyField, entry);
    else item = value(valueField, entry, depth);
  }
  item ??= defaultOf(valueField);
  define(into, String(key), item);
}

function defaultOf(field: FieldInfo): unknown {
  if (field.message) return {};
  if (field.enumInfo !== undefined) return field.enumInfo.names.get(0) ?? 0;
  switch (field.type) {
    case 'string':
      return '';
    case 'bytes':
      return Buffer.alloc(0);
    case 'bool':
      return false;
    case 'int64':
    case 'uint64':
    case 'sint64':
    case 'fixed64':
    case 'sfixed64':
      return '0';
    default:
      return 0;
  }
}

function decodeAt(
  typeName: string,
  buf: Buffer,
  start: number,
  end: number,
  depth: number,
): Record<string, unknown> {
  if (depth > MAX_DEPTH) throw new Error(`${typeName}: nested deeper than ${String(MAX_DEPTH)}`);
  const info = messageInfo(typeName);
  if (info === undefined) throw new Error(`unknown message type ${typeName}`);
  const reader = new Reader(buf, start, end);
  const values = new Map<FieldInfo, unknown>();
  while (reader.pos < end) {
    const tag = reader.small();
    const number = tag >>> 3;
    const wireType = tag & 7;
    if (number === 0) throw new Error(`${typeName}: field number 0`);
    const field = info.byNumber.get(number);
    if (field === undefined) {
      try {
        skip(reader, wireType);
      } catch (error) {
        throw new Error(`${typeName}: unknown field ${String(number)}: ${message(error)}`, {
          cause: error,
        });
      }
      continue;
    }
    try {
      read(field, wireType, reader, depth, values);
    } catch (error) {
      throw new Error(`${typeName}.${field.name}: ${message(error)}`, { cause: error });
    }
  }
  if (typeName === ANY) return anyObject(values, info, depth);
  return objectOf(values);
}

function read(
  field: FieldInfo,
  wireType: number,
  reader: Reader,
  depth: number,
  values: Map<FieldInfo, unknown>,
): void {
  const expected = field.wireType;
  if (field.map) {
    if (wireType !== LEN) throw new Error(`wire type ${String(wireType)}, expected 2`);
    let map = values.get(field) as Record<string, unknown> | undefined;
    if (map === undefined) values.set(field, (map = {}));
    mapEntry(field, reader, depth, map);
    return;
  }
  if (field.repeated) {
    let list = values.get(field) as unknown[] | undefined;
    if (list === undefined) values.set(field, (list = []));
    if (wireType === LEN && expected !== LEN) {
      const length = reader.small();
      const start = reader.take(length);
      const packed = new Reader(reader.buf, start, start + length);
      while (packed.pos < packed.end) list.push(value(field, packed, depth));
      return;
    }
    if (wireType !== expected)
      throw new Error(`wire type ${String(wireType)}, expected ${String(expected)}`);
    list.push(value(field, reader, depth));
    return;
  }
  if (wireType !== expected)
    throw new Error(`wire type ${String(wireType)}, expected ${String(expected)}`);
  values.set(field, value(field, reader, depth));
}

/** The fields read, in field-number order (as protobufjs lists them), as a plain object. */
function objectOf(values: Map<FieldInfo, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let fields = [...values.keys()];
  for (let i = 1; i < fields.length; i++) {
    if ((fields[i - 1] as FieldInfo).number > (fields[i] as FieldInfo).number) {
      fields = fields.sort((a, b) => a.number - b.number);
      break;
    }
  }
  // Field and oneof names come from the schema (proto identifiers): plain assignment is safe.
  for (const field of fields) {
    const v = values.get(field);
    if (Array.isArray(v) && v.length === 0) continue;
    out[field.name] = v;
    if (field.oneof !== '') out[field.oneof] = field.name;
  }
  return out;
}

/** Sets an own property even for a key like `__proto__` (a decoded map key may be anything). */
function define(into: Record<string, unknown>, key: string, v: unknown): void {
  if (key !== '__proto__') {
    into[key] = v;
    return;
  }
  Object.defineProperty(into, key, {
    value: v,
    enumerable: true,
    writable: true,
    configurable: true,
  });
}

function anyObject(
  values: Map<FieldInfo, unknown>,
  info: MessageInfo,
  depth: number,
): Record<string, unknown> {
  const typeUrl = values.get(info.byNumber.get(1) as FieldInfo);
  const bytes = values.get(info.byNumber.get(2) as FieldInfo);
  if (typeof typeUrl === 'string' && typeUrl !== '' && Buffer.isBuffer(bytes)) {
    const slash = typeUrl.lastIndexOf('/');
    const name = typeUrl.slice(slash + 1);
    const prefix = typeUrl.slice(0, slash + 1);
    if (name !== ANY && messageInfo(name) !== undefined) {
      const object = decodeAt(name, bytes, 0, bytes.length, depth + 1);
      define(object, '@type', (prefix === '' ? DEFAULT_TYPE_PREFIX : prefix) + name);
      return object;
    }
  }
  return objectOf(values);
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Decodes `bytes` as the message `typeName`; throws an Error naming the message and field. */
export function decodeMessage(typeName: string, bytes: Buffer): Record<string, unknown> {
  return decodeAt(typeName, bytes, 0, bytes.length, 0);
}

/** Encoding: bytes collected per message, lengths prefixed once a nested message is whole. */
class Writer {
  readonly parts: Buffer[] = [];
  private bytes: number[] = [];

  flush(): void {
    if (this.bytes.length > 0) {
      this.parts.push(Buffer.from(this.bytes));
      this.bytes = [];
    }
  }

  push(buf: Buffer): void {
    this.flush();
    this.parts.push(buf);
  }

  varint(value: bigint): void {
    let v = BigInt.asUintN(64, value);
    while (v > 0x7fn) {
      this.bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.bytes.push(Number(v));
  }

  /** A varint of 0 ≤ n < 2^32 (tags, lengths) without BigInt. */
  uint32(n: number): void {
    let v = n >>> 0;
    while (v > 0x7f) {
      this.bytes.push((v & 0x7f) | 0x80);
      v >>>= 7;
    }
    this.bytes.push(v);
  }

  tag(number: number, wireType: number): void {
    this.uint32(((number << 3) | wireType) >>> 0);
  }

  finish(): Buffer {
    this.flush();
    return Buffer.concat(this.parts);
  }
}

function integer(v: unknown, what: string): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  if (typeof v === 'string' && /^-?\d+$/.test(v)) return BigInt(v);
  throw new Error(`${what}: ${JSON.stringify(String(v))} is not an integer`);
}

function encodeScalar(field: FieldInfo, v: unknown, w: Writer): void {
  const what = field.name;
  if (field.enumInfo !== undefined) {
    const number =
      typeof v === 'string' && !/^-?\d+$/.test(v) ? field.enumInfo.numbers.get(v) : Number(v);
    if (number === undefined || !Number.isInteger(number))
      throw new Error(`${what}: ${JSON.stringify(String(v))} is not a value of ${field.type}`);
    w.varint(BigInt(number | 0));
    return;
  }
  switch (field.type) {
    case 'int32':
      w.varint(BigInt(Number(integer(v, what)) | 0));
      return;
    case 'uint32':
      w.uint32(Number(integer(v, what)) >>> 0);
      return;
    case 'sint32': {
      const n = Number(integer(v, what)) | 0;
      w.varint(BigInt(((n << 1) ^ (n >> 31)) >>> 0));
      return;
    }
    case 'int64':
    case 'uint64':
      w.varint(integer(v, what));
      return;
    case 'sint64': {
      const n = BigInt.asIntN(64, integer(v, what));
      w.varint((n << 1n) ^ (n >> 63n));
      return;
    }
    case 'bool':
      w.varint(v === true || v === 'true' ? 1n : 0n);
      return;
    case 'fixed64':
    case 'sfixed64': {
      const b = Buffer.alloc(8);
      b.writeBigUInt64LE(BigInt.asUintN(64, integer(v, what)));
      w.push(b);
      return;
    }
    case 'double': {
      const b = Buffer.alloc(8);
      b.writeDoubleLE(Number(v));
      w.push(b);
      return;
    }
    case 'fixed32':
    case 'sfixed32': {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(Number(BigInt.asUintN(32, integer(v, what))));
      w.push(b);
      return;
    }
    case 'float': {
      const b = Buffer.alloc(4);
      b.writeFloatLE(Number(v));
      w.push(b);
      return;
    }
    case 'string': {
      if (typeof v !== 'string') throw new Error(`${what}: expected a string`);
      const b = Buffer.from(v, 'utf8');
      w.uint32(b.length);
      w.push(b);
      return;
    }
    case 'bytes': {
      const b =
        typeof v === 'string'
          ? Buffer.from(v, 'base64')
          : v instanceof Uint8Array
            ? Buffer.from(v.buffer, v.byteOffset, v.byteLength)
            : undefined;
      if (b === undefined) throw new Error(`${what}: expected bytes`);
      w.uint32(b.length);
      w.push(b);
      return;
    }
    default:
      throw new Error(`${what}: unknown type ${field.type}`);
  }
}

function encodeValue(field: FieldInfo, v: unknown, w: Writer, depth: number): void {
  if (field.message) {
    const nested = encodeAt(field.type, v, depth + 1);
    w.uint32(nested.length);
    w.push(nested);
  } else encodeScalar(field, v, w);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function encodeAt(typeName: string, object: unknown, depth: number): Buffer {
  if (depth > MAX_DEPTH) throw new Error(`${typeName}: nested deeper than ${String(MAX_DEPTH)}`);
  if (!isRecord(object)) throw new Error(`${typeName}: expected an object`);
  if (typeName === ANY && typeof object['@type'] === 'string') {
    const typeUrl = object['@type'];
    const { '@type': _typeUrl, ...rest } = object;
    const inner = encodeAt(typeUrl.slice(typeUrl.lastIndexOf('/') + 1), rest, depth + 1);
    return encodeAt(ANY, { type_url: typeUrl, value: inner }, depth);
  }
  const info = messageInfo(typeName);
  if (info === undefined) throw new Error(`unknown message type ${typeName}`);
  for (const key of Object.keys(object))
    if (!info.oneofs.has(key) && !info.fields.some((field) => field.name === key))
      throw new Error(`${typeName}: no field ${JSON.stringify(key)}`);
  const w = new Writer();
  for (const field of info.fields) {
    const v = object[field.name];
    if (v === undefined || v === null) continue;
    try {
      encodeField(field, v, w, depth);
    } catch (error) {
      throw new Error(`${typeName}.${message(error)}`, { cause: error });
    }
  }
  return w.finish();
}

function encodeField(field: FieldInfo, v: unknown, w: Writer, depth: number): void {
  if (field.map) {
    if (!isRecord(v)) throw new Error(`${field.name}: expected an object`);
    const [keyField, valueField] = entryOf(field);
    for (const [key, item] of Object.entries(v)) {
      const entry = new Writer();
      entry.tag(1, keyField.wireType);
      encodeScalar(keyField, field.keyType === 'bool' ? key === 'true' : key, entry);
      entry.tag(2, valueField.wireType);
      encodeValue(valueField, item, entry, depth);
      const bytes = entry.finish();
      w.tag(field.number, LEN);
      w.uint32(bytes.length);
      w.push(bytes);
    }
    return;
  }
  if (field.repeated) {
    if (!Array.isArray(v)) throw new Error(`${field.name}: expected an array`);
    if (v.length === 0) return;
    if (field.packed && field.wireType !== LEN) {
      const run = new Writer();
      for (const item of v as unknown[]) encodeScalar(field, item, run);
      const bytes = run.finish();
      w.tag(field.number, LEN);
      w.uint32(bytes.length);
      w.push(bytes);
      return;
    }
    for (const item of v as unknown[]) {
      w.tag(field.number, field.wireType);
      encodeValue(field, item, w, depth);
    }
    return;
  }
  w.tag(field.number, field.wireType);
  encodeValue(field, v, w, depth);
}

/** Encodes a plain object (the decoded shape) as the message `typeName`. */
export function encodeMessage(typeName: string, object: Record<string, unknown>): Buffer {
  return encodeAt(typeName, object, 0);
}
