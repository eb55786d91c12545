// Writes proto/xds-schema.json, the compact wire schema the proxy's xDS codec
// reads (src/xds/wire), from the protos the control plane loads. Run after
// `npm run build` whenever proto/ changes; src/xds/wire/codec.test.ts fails
// while the committed file is stale.
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dist = new URL('../dist/src/xds/', import.meta.url);
const { xdsRoot } = await import(new URL('protos.js', dist).href);

const { wireSchemaOf, formatWireSchema } = await import(
  new URL('wire/schema-source.js', dist).href
);
const file = fileURLToPath(new URL('../proto/xds-schema.json', import.meta.url));
writeFileSync(file, formatWireSchema(wireSchemaOf(xdsRoot())));
console.log(`wrote ${file}`);
