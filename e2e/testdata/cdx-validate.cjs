// Validates CycloneDX 1.6 JSON files with @cyclonedx/cyclonedx-library's
// strict JSON validator (NODE_PATH points at the test's install); prints
// "valid FILE" for each, or the errors and exits 1.
const fs = require('fs');
const { Spec, Validation } = require('@cyclonedx/cyclonedx-library');
(async () => {
  let bad = false;
  for (const f of process.argv.slice(2)) {
    const v = new Validation.JsonStrictValidator(Spec.Version.v1dot6);
    const errs = await v.validate(fs.readFileSync(f, 'utf8'));
    if (errs === null) {
      console.log('valid ' + f);
    } else {
      bad = true;
      console.log('invalid ' + f + ': ' + JSON.stringify(errs));
    }
  }
  process.exit(bad ? 1 : 0);
})().catch((e) => { console.error(e); process.exit(2); });
