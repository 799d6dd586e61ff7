// Validates prometheus-operator objects (ServiceMonitor, PrometheusRule, ...)
// against the CRD schemas shipped in @kubernetes-models/prometheus-operator,
// which hack/install-tools.sh installs into .tools/node.
// Usage: node hack/validate-crds.mjs OBJECTS.json   (a JSON array of objects)
// Exits 1 on the first invalid object or on a kind it has no schema for.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const pkg = join(root, ".tools/node/node_modules/@kubernetes-models/prometheus-operator");
const objects = JSON.parse(readFileSync(process.argv[2], "utf8"));

let failed = 0;
for (const obj of objects) {
  const id = `${obj.kind}/${obj.metadata?.name} (${obj.apiVersion})`;
  const [group, version] = String(obj.apiVersion).split("/");
  if (group !== "monitoring.coreos.com" || !version) {
    console.error(`ERROR ${id}: not a prometheus-operator object`);
    failed++;
    continue;
  }
  let models;
  try {
    models = await import(pathToFileURL(join(pkg, group, version, "index.js")).href);
  } catch (e) {
    console.error(`ERROR ${id}: no schemas for ${obj.apiVersion}: ${e.message}`);
    failed++;
    continue;
  }
  const Model = models[obj.kind];
  if (!Model) {
    console.error(`ERROR ${id}: unknown kind ${obj.kind}`);
    failed++;
    continue;
  }
  try {
    new Model(obj).validate();
    console.log(`INFO ${id}: valid against the prometheus-operator CRD schema`);
  } catch (e) {
    console.error(`ERROR ${id}: ${e.message}`);
    failed++;
  }
}
process.exit(failed ? 1 : 0);
