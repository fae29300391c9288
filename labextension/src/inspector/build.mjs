// Builds what llmlab/attention needs at run time into llmlab/attention/static/ (gitignored,
// shipped in the wheel):
//   inspector.js       the anywidget front end (widget.ts and what it imports), one ES module
//   vendor/            require.js, d3 (v5, the major version bertviz's views are written for)
//                      and jQuery (v3, API-compatible with the 2.x bertviz names), each with its
//                      licence, inlined by Python into bertviz's HTML so it renders offline
//   vendor/versions.json
// Run by `npm run build:widget` (part of build and build:prod).
import { build, transform } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..', '..');
const out = resolve(root, '..', 'llmlab', 'attention', 'static');
const vendor = join(out, 'vendor');
mkdirSync(vendor, { recursive: true });

await build({
  entryPoints: [join(here, 'widget.ts')],
  outfile: join(out, 'inspector.js'),
  bundle: true,
  format: 'esm',
  target: 'es2020',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning'
});

function pkg(name) {
  const dir = join(root, 'node_modules', name);
  const meta = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  return { dir, version: meta.version, license: meta.license };
}

function licenceOf(dir, names) {
  for (const n of names) {
    if (existsSync(join(dir, n))) return readFileSync(join(dir, n), 'utf8');
  }
  return null;
}

const d3 = pkg('d3');
const jquery = pkg('jquery');
const requirejs = pkg('requirejs');
if (!d3.version.startsWith('5.')) {
  throw new Error(`bertviz's views are written for d3 v5, found d3 ${d3.version}`);
}

copyFileSync(join(d3.dir, 'dist', 'd3.min.js'), join(vendor, 'd3.min.js'));
writeFileSync(join(vendor, 'd3.LICENSE.txt'), licenceOf(d3.dir, ['LICENSE', 'LICENSE.txt']));
copyFileSync(join(jquery.dir, 'dist', 'jquery.min.js'), join(vendor, 'jquery.min.js'));
writeFileSync(join(vendor, 'jquery.LICENSE.txt'), licenceOf(jquery.dir, ['LICENSE.txt', 'LICENSE']));

// require.js ships unminified; minify it, keeping its @license header
const req = await transform(readFileSync(join(requirejs.dir, 'require.js'), 'utf8'), {
  minify: true,
  legalComments: 'inline',
  loader: 'js'
});
writeFileSync(join(vendor, 'require.min.js'), req.code);
// The requirejs npm package has no LICENSE file; its header says "Released under MIT license".
const reqLicence =
  licenceOf(requirejs.dir, ['LICENSE', 'LICENSE.txt']) ||
  `RequireJS ${requirejs.version}
Copyright jQuery Foundation and other contributors, https://jquery.org/

This software consists of voluntary contributions made by many individuals. For exact
contribution history, see the revision history available at
https://github.com/requirejs/requirejs

The MIT License (MIT)

Permission is hereby granted, free of charge, to any person obtaining a copy of this software
and associated documentation files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING
BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM,
DAMAGES OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.
`;
writeFileSync(join(vendor, 'require.LICENSE.txt'), reqLicence);

writeFileSync(
  join(vendor, 'versions.json'),
  JSON.stringify(
    {
      d3: { version: d3.version, license: d3.license, file: 'd3.min.js' },
      jquery: { version: jquery.version, license: jquery.license, file: 'jquery.min.js' },
      requirejs: { version: requirejs.version, license: requirejs.license, file: 'require.min.js' }
    },
    null,
    2
  ) + '\n'
);
console.log(`llmlab inspector: built ${out}`);
