// Every entity in the given YAML files, checked as Backstage's catalog checks what it ingests:
// its placeholders resolved first as the catalog's PlaceholderProcessor does ($text, $json and
// $yaml: a file relative to the entity's, which must exist), then the entity policies its
// processing applies (default namespace, field formats, no foreign
// root fields, the envelope schema), then the validator of the entity's kind (the built-in
// kinds of @backstage/catalog-model, the Template kind of @backstage/plugin-scaffolder-common).
// Prints one JSON line per entity ({file, index, kind, name, error}); exits 1 if any fails or
// has a kind no validator knows.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const yaml = require('yaml');
const model = require('@backstage/catalog-model');
const { templateEntityV1beta3Validator } = require('@backstage/plugin-scaffolder-common');

const policy = model.EntityPolicies.allOf([
  new model.DefaultNamespaceEntityPolicy(),
  new model.FieldFormatEntityPolicy(),
  new model.NoForeignRootFieldsEntityPolicy(),
  new model.SchemaValidEntityPolicy(),
]);
const validators = [
  model.apiEntityV1alpha1Validator, model.componentEntityV1alpha1Validator,
  model.domainEntityV1alpha1Validator, model.groupEntityV1alpha1Validator,
  model.locationEntityV1alpha1Validator, model.resourceEntityV1alpha1Validator,
  model.systemEntityV1alpha1Validator, model.userEntityV1alpha1Validator,
  templateEntityV1beta3Validator,
];

// { $text: "./openapi.yaml" } -> the file's text ($json, $yaml: parsed), relative to `base`.
function resolve(value, base) {
  if (Array.isArray(value)) return value.map((v) => resolve(v, base));
  if (value === null || typeof value !== 'object') return value;
  const keys = Object.keys(value);
  if (keys.length === 1 && ['$text', '$json', '$yaml'].includes(keys[0])) {
    const text = fs.readFileSync(path.resolve(base, value[keys[0]]), 'utf8');
    return keys[0] === '$text' ? text : keys[0] === '$json' ? JSON.parse(text) : yaml.parse(text);
  }
  return Object.fromEntries(keys.map((k) => [k, resolve(value[k], base)]));
}

async function check(entity) {
  const enforced = await policy.enforce(entity);
  for (const validator of validators) {
    if (await validator.check(enforced)) return null;
  }
  return `no validator for ${entity.apiVersion} ${entity.kind}`;
}

(async () => {
  let failed = false;
  for (const file of process.argv.slice(2)) {
    const documents = yaml.parseAllDocuments(fs.readFileSync(file, 'utf8'));
    for (const [index, document] of documents.entries()) {
      const entity = document.toJS();
      let error = null;
      try {
        error = await check(resolve(entity, path.dirname(file)));
      } catch (e) {
        error = String(e.message || e);
      }
      failed ||= error !== null;
      console.log(JSON.stringify({ file, index, kind: entity?.kind ?? null,
                                   name: entity?.metadata?.name ?? null, error }));
    }
  }
  process.exit(failed ? 1 : 0);
})();
