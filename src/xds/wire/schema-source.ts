/**
 * Builds the compact wire schema (proto/xds-schema.json) from the protobufjs
 * reflection root the control plane loads. The proxy decodes and encodes xDS
 * messages from that table alone (./codec.ts), without protobufjs: its
 * reflection objects for the ~570 xDS types held ~6 MB of every proxy's heap
 * and their parse at start pushed the heap to ~30 MB (issue 22, idle RSS).
 * Regenerate with `node scripts/gen-xds-schema.mjs` after changing proto/;
 * src/xds/wire/codec.test.ts fails while the committed table is stale.
 */
import protobuf from 'protobufjs';
import type { WireSchema, WireField } from './schema.js';

/** Field flags in the table: repeated, map, packed. */
export const REPEATED = 1;
export const MAP = 2;
export const PACKED = 4;

/** Key types of proto3 maps (64-bit keys decode as decimal strings; protobufjs gives a hash). */
const MAP_KEYS = new Set([
  'string',
  'bool',
  'int32',
  'uint32',
  'sint32',
  'fixed32',
  'sfixed32',
  'int64',
  'uint64',
  'sint64',
  'fixed64',
  'sfixed64',
]);

function typeName(field: protobuf.Field): string {
  const resolved = field.resolvedType;
  if (resolved === null) return field.type;
  return resolved.fullName.replace(/^\./, '');
}

/** The table for every message and enum in `root`, sorted by name (fields by number). */
export function wireSchemaOf(root: protobuf.Root): WireSchema {
  const messages: Record<string, WireField[]> = {};
  const enums: Record<string, [string, number][]> = {};
  const visit = (ns: protobuf.NamespaceBase): void => {
    for (const nested of ns.nestedArray) {
      if (nested instanceof protobuf.Type) {
        const name = nested.fullName.replace(/^\./, '');
        const fields = [...nested.fieldsArray].sort((a, b) => a.id - b.id);
        messages[name] = fields.map((field): WireField => {
          field.resolve();
          const isMap = field instanceof protobuf.MapField;
          const flags =
            (field.repeated ? REPEATED : 0) |
            (isMap ? MAP : 0) |
            (field.repeated && field.packed ? PACKED : 0);
          const oneof = field.partOf?.name ?? '';
          const keyType = isMap ? field.keyType : '';
          if (isMap && !MAP_KEYS.has(keyType))
            throw new Error(`${name}.${field.name}: map key type ${keyType} is not supported`);
          return [field.id, field.name, typeName(field), flags, keyType, oneof];
        });
      } else if (nested instanceof protobuf.Enum) {
        enums[nested.fullName.replace(/^\./, '')] = Object.entries(nested.values);
      }
      if (nested instanceof protobuf.Namespace) visit(nested);
    }
  };
  visit(root);
  const sorted = <T>(record: Record<string, T>): Record<string, T> =>
    Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return { messages: sorted(messages), enums: sorted(enums) };
}

/** The file's text: one message or enum per line, so a proto change shows as a readable diff. */
export function formatWireSchema(schema: WireSchema): string {
  const block = (record: Record<string, unknown>): string =>
    Object.entries(record)
      .map(([name, value]) => `    ${JSON.stringify(name)}: ${JSON.stringify(value)}`)
      .join(',\n');
  return `{\n  "messages": {\n${block(schema.messages)}\n  },\n  "enums": {\n${block(schema.enums)}\n  }\n}\n`;
}
