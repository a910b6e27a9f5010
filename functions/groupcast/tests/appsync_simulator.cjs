'use strict';
// Starts amplify-appsync-simulator 2.4.1 (tests/node_modules) on 127.0.0.1 with groupcast's GraphQL
// schema, for the GraphQL subscriber test (tests/subscribers_graphql_iot/graphql_simulator.rs).
//
// Usage: node appsync_simulator.cjs SCHEMA_TEMPLATE PORT WS_PORT
// Prints "READY" once it listens; runs until killed.
//
// The schema is templates/graphql/schema.graphql.tera with its few Tera expressions filled in
// here (subscriber directives @aws_cognito_user_pools and @aws_api_key, 200 groups); anything
// left unrendered fails loudly, so a changed template cannot pass unnoticed. The simulator filters
// nothing and has no $extensions (shared/reference/local-peers.md §2), so the subscription's
// response template is a pass-through: every subscriber receives every publish, and the test
// checks that the subscriber itself drops what is not addressed to its groups.
process.env.AWS_SDK_JS_SUPPRESS_MAINTENANCE_MODE_MESSAGE = '1';
const fs = require('node:fs');
const {
  AmplifyAppSyncSimulator,
  AmplifyAppSyncSimulatorAuthenticationType: A,
} = require('amplify-appsync-simulator');

const [templatePath, port, wsPort] = process.argv.slice(2);

function render(tera) {
  const directives = ' @aws_cognito_user_pools @aws_api_key';
  let out = tera
    .replace(/\{#[\s\S]*?#\}/g, '')
    .replace('{% for d in subscriber %} {{ d }}{% endfor %}', directives)
    .replace('{% for d in graphql.subscriber_directives %} {{ d }}{% endfor %}', directives)
    .replace('{{ graphql.subscriber_auth_modes | join(sep=", ") }}', 'AMAZON_COGNITO_USER_POOLS, API_KEY')
    .replace('{{ graphql.max_groups }}', '200')
    // The directive checks (`{% if … %}{{ throw(…) }}{% endif %}`) and the loop that collects
    // directives: control flow only, no output.
    .replace(/\{%-?\s*if\b[\s\S]*?\{%-?\s*endif\s*-?%\}/g, '')
    .replace(/\{%-?[\s\S]*?-?%\}/g, '');
  if (/\{\{|\{%|\{#/.test(out)) {
    throw new Error(`schema.graphql.tera has Tera this test does not render:\n${out}`);
  }
  return out;
}

async function main() {
  const sdl = render(fs.readFileSync(templatePath, 'utf8'));
  const sim = new AmplifyAppSyncSimulator({ port: Number(port), wsPort: Number(wsPort) });
  sim.init({
    schema: { content: sdl },
    dataSources: [{ type: 'NONE', name: 'NoneDS' }],
    resolvers: [
      {
        kind: 'UNIT',
        typeName: 'Mutation',
        fieldName: 'publish',
        dataSourceName: 'NoneDS',
        requestMappingTemplate:
          '{"version":"2018-05-29","payload":{"topic":$util.toJson($ctx.args.topic),"data":$util.toJson($ctx.args.data),"groups":$util.toJson($ctx.args.groups),"uuid":$util.toJson($ctx.args.uuid)}}',
        responseMappingTemplate: '$util.toJson($ctx.result)',
      },
      {
        kind: 'UNIT',
        typeName: 'Subscription',
        fieldName: 'subscribe',
        dataSourceName: 'NoneDS',
        requestMappingTemplate: '{"version":"2018-05-29","payload":{}}',
        // Pass-through: the simulator cannot run the real template's $extensions filter.
        responseMappingTemplate: '$util.toJson(null)',
      },
    ],
    appSync: {
      name: 'groupcast-subscriber-test',
      apiKey: 'da2-localtestkey',
      defaultAuthenticationType: { authenticationType: A.AWS_IAM },
      additionalAuthenticationProviders: [
        { authenticationType: A.AMAZON_COGNITO_USER_POOLS, cognitoUserPoolConfig: {} },
        { authenticationType: A.API_KEY },
      ],
    },
  });
  await sim.start();
  process.stdout.write('READY\n');
}

main().catch((e) => {
  process.stderr.write(`appsync simulator failed: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
