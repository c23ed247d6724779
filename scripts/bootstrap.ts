// `npm run bootstrap`: the first start of a deployed stack, as `npm start` does it locally: the
// built-in roles, ROOT and the root admin, whose password and API keys are printed once, and Mold's
// agent CA. Needs AWS credentials and the stack's outputs in MOLD_TABLE, MOLD_DATA_KEY_SECRET_ARN
// and MOLD_CA_SECRET_ARN.
import { bootstrapAgentCa, bootstrapRootAdmin } from '../shared/bootstrap.ts';

const ca = await bootstrapAgentCa();
process.stdout.write(
  {
    created: "Mold's agent CA created in its secret.\n",
    present: "Mold's agent CA already exists.\n",
    'not configured': 'MOLD_CA_SECRET_ARN is not set (the stack output AgentCaSecretArn): agents cannot enrol until the CA exists.\n',
  }[ca],
);

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
