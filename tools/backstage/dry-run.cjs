// Backstage's real scaffolder (plugin-scaffolder-backend, with the GitHub module for
// publish:github:pull-request) in a test backend, and its dry-run endpoint called for a
// template directory once per set of form values: the same POST /v2/dry-run a template
// editor's "dry run" makes. The parameters are checked against the template's form schema
// as for a real run (400 and the errors when they fail); the steps run in dry-run mode (the
// pull request is not opened). Usage: node dry-run.cjs <template dir> <cases.json>, where
// cases.json is a list of form values; prints a JSON list of {status, errors, files, output}.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const yaml = require('yaml');
const { startTestBackend, mockServices, mockCredentials } = require('@backstage/backend-test-utils');
const { catalogServiceMock } = require('@backstage/plugin-catalog-node/testUtils');

function contents(dir) {
  const files = [];
  const walk = (d) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else files.push({ path: path.relative(dir, full),
                        base64Content: fs.readFileSync(full).toString('base64') });
    }
  };
  walk(dir);
  return files;
}

(async () => {
  const [dir, casesFile] = process.argv.slice(2);
  const template = yaml.parse(fs.readFileSync(path.join(dir, 'template.yaml'), 'utf8'));
  const cases = JSON.parse(fs.readFileSync(casesFile, 'utf8'));
  const { server } = await startTestBackend({
    features: [
      import('@backstage/plugin-scaffolder-backend'),
      import('@backstage/plugin-scaffolder-backend-module-github'),
      catalogServiceMock.factory({ entities: [] }),
      // The GitHub integration must exist for the action to resolve; a dry run never uses it.
      mockServices.rootConfig.factory({ data: { integrations: { github: [
        { host: 'github.com', token: 'never-used-by-a-dry-run' }] } } }),
    ],
  });
  const url = `http://localhost:${server.address().port}/api/scaffolder/v2/dry-run`;
  const directoryContents = contents(dir);
  const results = [];
  for (const values of cases) {
    const response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json',
                 authorization: mockCredentials.user.header() },
      body: JSON.stringify({ template, values, directoryContents }),
    });
    const body = await response.json();
    results.push({
      status: response.status,
      errors: (body.errors || []).map((e) => ({ path: e.path, message: e.message })),
      error: body.error ? body.error.message : null,
      files: Object.fromEntries((body.directoryContents || []).map(
        (f) => [f.path, Buffer.from(f.base64Content, 'base64').toString('utf8')])),
      output: body.output || null,
      log: (body.log || []).map((l) => l.body && l.body.message).filter(Boolean),
    });
  }
  process.stdout.write(JSON.stringify(results));
  server.close();
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
