// Resource names from the command line (`auth can-i VERB RESOURCE`): a bare known name takes
// its API group, `name.group` splits, and an unknown bare name has the core group — even
// one that is also the name of an Object property.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveResource } from './resources.js';

test('resource names resolve to their API group; unknown bare names to the core group', () => {
  assert.deepEqual(resolveResource('deployments'), {
    resource: 'deployments',
    apiGroup: 'apps',
    clusterScoped: false,
  });
  assert.deepEqual(resolveResource('Deployments.apps'), {
    resource: 'deployments',
    apiGroup: 'apps',
    clusterScoped: false,
  });
  assert.deepEqual(resolveResource('nodes'), {
    resource: 'nodes',
    apiGroup: '',
    clusterScoped: true,
  });
  for (const name of ['constructor', 'tostring', 'hasownproperty', '__proto__', 'widgets'])
    assert.deepEqual(
      resolveResource(name),
      { resource: name, apiGroup: '', clusterScoped: false },
      name,
    );
});
