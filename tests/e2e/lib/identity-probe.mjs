// What the suite's Node clients do with a user's token, for a Rust test to check against the
// stack's own verifiers (provisioner/dev/tests/node_clients.rs): GetId and
// GetCredentialsForIdentity on the AWS port (lib/stack.mjs), then the presigned IoT URL
// (lib/presign.mjs). Usage: node identity-probe.mjs '{"awsOrigin", "identityPoolId", "token", "iotUrl", "region"}'
// Prints {identityId, accessKeyId, url}.
import { identityCredentials } from './stack.mjs';
import { presignIot } from './presign.mjs';

const a = JSON.parse(process.argv[2]);
const stack = { awsOrigin: a.awsOrigin, amplifyOutputs: { auth: { identity_pool_id: a.identityPoolId } }, outputs: {}, ca: a.ca };
const creds = await identityCredentials(stack, a.token);
const url = await presignIot({ url: a.iotUrl, region: a.region, ...creds });
process.stdout.write(JSON.stringify({ identityId: creds.identityId, accessKeyId: creds.accessKeyId, url }) + '\n');
