/**
 * google.protobuf.Struct ↔ plain objects (`node.metadata`, endpoint
 * `filter_metadata`). protobufjs defines the well-known types itself with
 * camelCase field names (`stringValue`, `structValue`…) even when the loader
 * keeps proto case, so Struct values must be written in camelCase — a
 * snake_case `string_value` is silently dropped on encode. Decoding accepts
 * both spellings.
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
  if (typeof value === 'string') return { stringValue: value };
  if (typeof value === 'number') return { numberValue: value };
  if (typeof value === 'boolean') return { boolValue: value };
  if (Array.isArray(value)) return { listValue: { values: value.map(toValue) } };
  if (isRecord(value)) return { structValue: objectToStruct(value) };
  return { nullValue: 'NULL_VALUE' };
}

function fromValue(value: unknown): unknown {
  if (!isRecord(value)) return value;
  for (const key of [
    'stringValue',
    'string_value',
    'numberValue',
    'number_value',
    'boolValue',
    'bool_value',
  ])
    if (key in value) return value[key];
  for (const key of ['structValue', 'struct_value'])
    if (key in value) return structToObject(value[key]);
  for (const key of ['listValue', 'list_value'])
    if (key in value) {
      const list = value[key];
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
