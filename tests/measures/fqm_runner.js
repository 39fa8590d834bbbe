#!/usr/bin/env node
// Run several eCQM measure bundles with fqm-execution over one file of patient Bundles, in one Node process
// (the differential test of issue 29; the same calculation options as ../shared/reference/ecqm/run_fqm.js).
//
//   node fqm_runner.js <patients.ndjson: one patient Bundle a line> <period-start> <period-end>
//                      <measure-bundle.json>... [--chunk N] [--no-trust-meta-profile]
//
// Output, one JSON line per (measure, patient):
//   {"measure": "<bundle file name>", "patient": "<id>", "populations": {"initial-population": true, ...}}
// and per measure one line on stderr: {"summary": {"measure", "patients", "seconds", "patientsPerSecond"}}.
// Needs fqm-execution on the module path (NODE_PATH), as tests/measures/fqm.py sets it.
'use strict';
const fs = require('fs');
const path = require('path');
const { Calculator } = require('fqm-execution');

async function main() {
  const argv = process.argv.slice(2);
  const pos = [];
  let chunk = 250;
  let trust = true;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--chunk') chunk = parseInt(argv[++i], 10);
    else if (argv[i] === '--no-trust-meta-profile') trust = false;
    else pos.push(argv[i]);
  }
  if (pos.length < 4) {
    console.error('usage: node fqm_runner.js <patients.ndjson> <start> <end> <measure-bundle.json>... [--chunk N]');
    process.exit(2);
  }
  const [patientsPath, start, end, ...measures] = pos;
  const bundles = fs.readFileSync(patientsPath, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
  for (const measurePath of measures) {
    const measureBundle = JSON.parse(fs.readFileSync(measurePath, 'utf8'));
    const options = {
      measurementPeriodStart: start,
      measurementPeriodEnd: end,
      trustMetaProfile: trust,
      calculateSDEs: false,
      calculateHTML: false,
      calculateClauseCoverage: false,
      calculateClauseUncoverage: false,
      calculateCoverageDetails: false,
      verboseCalculationResults: false,
      useElmJsonsCaching: true,
    };
    const name = path.basename(measurePath);
    const t0 = process.hrtime.bigint();
    let n = 0;
    const lines = [];
    for (let i = 0; i < bundles.length; i += chunk) {
      const out = await Calculator.calculate(measureBundle, bundles.slice(i, i + chunk), options);
      for (const r of out.results) {
        const populations = {};
        for (const g of r.detailedResults || []) {
          for (const p of g.populationResults || []) populations[p.populationType] = p.result;
        }
        lines.push(JSON.stringify({ measure: name, patient: r.patientId, populations }));
        n++;
      }
    }
    const secs = Number(process.hrtime.bigint() - t0) / 1e9;
    process.stdout.write(lines.join('\n') + (lines.length ? '\n' : ''));
    console.error(JSON.stringify({ summary: { measure: name, patients: n, seconds: +secs.toFixed(3),
      patientsPerSecond: +(n / secs).toFixed(1) } }));
  }
}

main().catch((e) => { console.error(e && e.stack ? e.stack : e); process.exit(1); });
