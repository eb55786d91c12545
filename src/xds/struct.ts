/**
 * google.protobuf.Struct ↔ plain objects, in @grpc/proto-loader's decoded
 * form (`{ fields: { k: { string_value } } }`). Used for `node.metadata`.
 */

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A plain object as a Struct. */
export function objectToStruct(object: Readonly<Record<string, unknown>>): {
  fields: Record<string, unknown>;
} {
  const fields: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(object)) fields[key] = toValue(value);
  return { fields };
}

function toValue(value: unknown): unknown {
  if (typeof value === 'string') return { string_value: value };
  if (typeof value === 'number') return { number_value: value };
  if (typeof value === 'boolean') return { bool_value: value };
  if (Array.isArray(value)) return { list_value: { values: value.map(toValue) } };
  if (isRecord(value)) return { struct_value: objectToStruct(value) };
  return { null_value: 'NULL_VALUE' };
}

function fromValue(value: unknown): unknown {
  if (!isRecord(value)) return value;
  if ('string_value' in value) return value['string_value'];
  if ('number_value' in value) return value['number_value'];
  if ('bool_value' in value) return value['bool_value'];
  if ('struct_value' in value) return structToObject(value['struct_value']);
  if ('list_value' in value) {
    const list = value['list_value'];
    return isRecord(list) && Array.isArray(list['values']) ? list['values'].map(fromValue) : [];
  }
  return null;
}

/** A decoded Struct (or an already-plain object) as a plain object. */
export function structToObject(struct: unknown): Record<string, unknown> {
  if (!isRecord(struct)) return {};
  const fields = struct['fields'];
  if (!isRecord(fields)) return { ...struct };
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields)) out[key] = fromValue(value);
  return out;
}
