// CDK's own template diff engine (@aws-cdk/cloudformation-diff, bundled in the pinned aws-cdk
// CLI package), run offline on template pairs.  stdin: {"cli": <path to aws-cdk/lib/index.js>,
// "pairs": [{"key", "old", "new"}]}; stdout: {key: [{logicalId, type, oldType, impact,
// properties: {name: impact}, other: [names]}]}.  `cdk diff` itself needs a deployed stack
// or a single --template; this is the same engine, per stack, for both sides we have.
"use strict";
const chunks = [];
process.stdin.on("data", (c) => chunks.push(c));
process.stdin.on("end", () => {
  const input = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  const cdk = require(input.cli);
  const out = {};
  for (const pair of input.pairs) {
    const formatter = new cdk.DiffFormatter({
      templateInfo: { oldTemplate: pair.old, newTemplate: { template: pair.new, stackName: pair.key } },
    });
    const diff = formatter.computeDiff(pair.key, pair.old, pair.new, undefined, {});
    const changes = [];
    diff.resources.forEachDifference((logicalId, change) => {
      const properties = {};
      for (const [name, prop] of Object.entries(change.propertyUpdates)) properties[name] = prop.changeImpact;
      changes.push({
        logicalId,
        type: change.newResourceType ?? change.oldResourceType,
        oldType: change.oldResourceType ?? null,
        impact: change.changeImpact,
        properties,
        other: Object.keys(change.otherChanges),
      });
    });
    out[pair.key] = changes;
  }
  process.stdout.write(JSON.stringify(out));
});
