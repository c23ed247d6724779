// `npm run bootstrap`: the first start of a deployed stack, as `npm start` does it locally: the
// built-in roles, ROOT and the root admin, whose password and API keys are printed once.
// Needs AWS credentials and the stack's outputs in MOLD_TABLE and MOLD_DATA_KEY_SECRET_ARN.
import { bootstrapRootAdmin } from '../shared/bootstrap.ts';

const credentials = await bootstrapRootAdmin();
if (!credentials) {
  process.stdout.write('Already bootstrapped: the root admin exists.\n');
} else {
  process.stdout.write(
    [
      'Root admin created. This is the only time its credentials are shown:',
      `  domain     ${credentials.domain}`,
      `  username   ${credentials.username}`,
      `  password   ${credentials.password}`,
      `  apikey     ${credentials.apikey}`,
      `  secretkey  ${credentials.secretkey}`,
      '',
    ].join('\n'),
  );
}
