/**
 * The compact xDS wire schema (proto/xds-schema.json, generated from the
 * protos by ./schema-source.ts): per message its fields as
 * `[number, name, type, flags, mapKeyType, oneof]`, per enum its values. The
 * proxy's codec reads it instead of a protobufjs reflection root; each
 * message's field index is built the first time that message is read.
 */
import { readFileSync } from 'node:fs';

/** `[number, name, type, flags (1 repeated, 2 map, 4 packed), map key type or '', oneof or '']`. */
export type WireField = [number, string, string, number, string, string];

export interface WireSchema {
  readonly messages: Record<string, WireField[]>;
  readonly enums: Record<string, [string, number][]>;
}

/** Where the generated table lives (next to the .proto files it was made from). */
export const WIRE_SCHEMA_FILE = new URL('../../../../proto/xds-schema.json', import.meta.url);

export interface MessageInfo {
  readonly name: string;
  /** Fields by number. */
  readonly byNumber: ReadonlyMap<number, FieldInfo>;
  /** Fields by proto name, in number order. */
  readonly fields: readonly FieldInfo[];
  /** Names of the message's oneofs (keys that only name the set member). */
  readonly oneofs: ReadonlySet<string>;
}

export interface FieldInfo {
  readonly number: number;
  readonly name: string;
  /** A scalar type name, or the full name of a message or enum. */
  readonly type: string;
  readonly repeated: boolean;
  readonly map: boolean;
  readonly packed: boolean;
  readonly keyType: string;
  readonly oneof: string;
  /** Set for enum-typed fields. */
  readonly enumInfo: EnumInfo | undefined;
  /** True for message-typed fields (and map values of a message type). */
  readonly message: boolean;
  /** The wire type a single value of the field is written with (maps: LEN). */
  readonly wireType: number;
  /** For a map field: its entry message's key (1) and value (2) fields. */
  readonly entry: readonly [FieldInfo, FieldInfo] | undefined;
}

/** Protocol Buffers wire types (the ones proto3 uses). */
export const VARINT = 0;
export const I64 = 1;
export const LEN = 2;
export const I32 = 5;

const VARINT_TYPES = new Set(['int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64', 'bool']);
const I64_TYPES = new Set(['fixed64', 'sfixed64', 'double']);
const I32_TYPES = new Set(['fixed32', 'sfixed32', 'float']);

function wireTypeOf(type: string, isEnum: boolean, isMessage: boolean): number {
  if (isMessage || type === 'string' || type === 'bytes') return LEN;
  if (isEnum || VARINT_TYPES.has(type)) return VARINT;
  if (I64_TYPES.has(type)) return I64;
  if (I32_TYPES.has(type)) return I32;
  throw new Error(`unknown field type ${type}`);
}

export interface EnumInfo {
  /** Name of each number (the first declared, as protobufjs). */
  readonly names: ReadonlyMap<number, string>;
  /** Number of each name (aliases included). */
  readonly numbers: ReadonlyMap<string, number>;
}

let schema: WireSchema | undefined;
const messageCache = new Map<string, MessageInfo>();
const enumCache = new Map<string, EnumInfo>();

function loaded(): WireSchema {
  schema ??= JSON.parse(readFileSync(WIRE_SCHEMA_FILE, 'utf8')) as WireSchema;
  return schema;
}

/** The enum `name`, or undefined when the schema has none by that name. */
export function enumInfo(name: string): EnumInfo | undefined {
  let info = enumCache.get(name);
  if (info === undefined) {
    const values = Object.hasOwn(loaded().enums, name) ? loaded().enums[name] : undefined;
    if (values === undefined) return undefined;
    const names = new Map<number, string>();
    for (const [valueName, number] of values) if (!names.has(number)) names.set(number, valueName);
    info = { names, numbers: new Map(values) };
    enumCache.set(name, info);
  }
  return info;
}

/** The message `name`, or undefined when the schema has none by that name. */
export function messageInfo(name: string): MessageInfo | undefined {
  let info = messageCache.get(name);
  if (info === undefined) {
    const fields = Object.hasOwn(loaded().messages, name) ? loaded().messages[name] : undefined;
    if (fields === undefined) return undefined;
    const list = fields.map(([number, fieldName, type, flags, keyType, oneof]): FieldInfo => {
      const isEnum = Object.hasOwn(loaded().enums, type);
      const isMessage = Object.hasOwn(loaded().messages, type);
      const map = (flags & 2) !== 0;
      const field: FieldInfo = {
        number,
        name: fieldName,
        type,
        repeated: (flags & 1) !== 0,
        map,
        packed: (flags & 4) !== 0,
        keyType,
        oneof,
        enumInfo: isEnum ? enumInfo(type) : undefined,
        message: isMessage,
        wireType: map ? LEN : wireTypeOf(type, isEnum, isMessage),
        entry: undefined,
      };
      if (!map) return field;
      const key: FieldInfo = {
        ...field,
        type: keyType,
        map: false,
        repeated: false,
        enumInfo: undefined,
        message: false,
        wireType: wireTypeOf(keyType, false, false),
      };
      const value: FieldInfo = {
        ...field,
        map: false,
        repeated: false,
        wireType: wireTypeOf(type, isEnum, isMessage),
      };
      return { ...field, entry: [key, value] };
    });
    info = {
      name,
      byNumber: new Map(list.map((field) => [field.number, field])),
      fields: list,
      oneofs: new Set(list.map((field) => field.oneof).filter((oneof) => oneof !== '')),
    };
    messageCache.set(name, info);
  }
  return info;
}

/**
 * The number of a decoded enum value (decoding gives names, e.g. `TooManyRequests`
 * for envoy.type.v3.StatusCode); numbers pass through. Undefined for an unknown name.
 */
export function enumNumber(enumName: string, value: unknown): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value !== 'string') return undefined;
  if (/^\d+$/.test(value)) return Number(value);
  return enumInfo(enumName)?.numbers.get(value);
}
