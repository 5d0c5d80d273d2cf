#!/usr/bin/env node
// The scenario of a Node gRPC client, @grpc/grpc-js with @grpc/proto-loader reading proto/.
//
// Run by scripts/clients/run.sh against a server it started (the same steps as the Python
// client): creates an organization, a user schema and four users, finds two of them with a
// nested ListUsers (or, and, not), reads one with GetUser and expects NotFound for an id that
// does not exist. With --gzip every request is sent gzip-compressed. Exits non-zero, naming
// the step, on the first answer that differs from the expected one.
//
//   node scenario.js --target 127.0.0.1:8080 --token-file admin.token --proto-dir proto [--gzip]
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { scenarioArgs } = require('./args');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');

const args = scenarioArgs('node client', 'node', { 'proto-dir': { type: 'string' } }, ['proto-dir']);

const definition = protoLoader.loadSync(
  ['userdir/user/v1/user_service.proto', 'userdir/user/v1/directory_service.proto'],
  {
    includeDirs: [path.resolve(args['proto-dir'])],
    longs: String,
    enums: String,
    defaults: false,
    oneofs: true,
  },
);
const v1 = grpc.loadPackageDefinition(definition).userdir.user.v1;

const token = fs.readFileSync(args['token-file'], 'utf8').trim();
const metadata = new grpc.Metadata();
metadata.set('authorization', `Bearer ${token}`);
// 2 is gzip in grpc-js's compression algorithms (0 identity, 1 deflate, 2 gzip).
const channelOptions = args.gzip ? { 'grpc.default_compression_algorithm': 2 } : {};
const credentials = grpc.credentials.createInsecure();
const organizations = new v1.OrganizationService(args.target, credentials, channelOptions);
const schemas = new v1.UserSchemaService(args.target, credentials, channelOptions);
const users = new v1.UserService(args.target, credentials, channelOptions);

function call(client, method, request) {
  return new Promise((resolve, reject) => {
    client[method](request, metadata, (error, response) => (error ? reject(error) : resolve(response)));
  });
}

function expect(condition, what) {
  if (!condition) {
    throw new Error(`node client (${args.name}): ${what}`);
  }
}

// google.protobuf.Struct as proto-loader represents it: no JSON mapping, explicit values.
function struct(object) {
  const value = (v) => {
    if (typeof v === 'string') return { stringValue: v };
    if (Array.isArray(v)) return { listValue: { values: v.map(value) } };
    return { structValue: struct(v) };
  };
  return { fields: Object.fromEntries(Object.entries(object).map(([k, v]) => [k, value(v)])) };
}

async function main() {
  const org = (await call(organizations, 'CreateOrganization', { name: `Clients ${args.name}` }))
    .organizationId;
  const schema = (await call(schemas, 'CreateUserSchema', {
    type: `clients-${args.name}`,
    schema: struct({ type: 'object', required: ['name'], properties: { name: { type: 'string' } } }),
  })).schemaId;

  async function create(name, email, phone) {
    const contact = { email: { address: email, isVerified: true } };
    if (phone) contact.phone = { number: phone, isVerified: true };
    const response = await call(users, 'CreateUser', {
      organizationId: org,
      schemaId: schema,
      data: struct({ name }),
      contact,
      usernames: [{ username: `${name}-${args.name}` }],
    });
    expect(response.userId && response.details.resourceOwner === org,
      `CreateUser ${name}: ${JSON.stringify(response)}`);
    return response.userId;
  }

  const ada = await create('ada', 'ada@example.com', '+41 79 000 00 01');
  await create('bob', 'bob@example.com');
  const zoe = await create('zoe', 'zoe@example.org', '+33 6 00 00 00 01');
  await create('zed', 'zed@example.org', '+41 79 000 00 02');

  // This organization's users whose email starts with "ADA" in any case, or ends with
  // "example.org" without a Swiss phone number: ada and zoe, by email.
  const listed = await call(users, 'ListUsers', {
    query: { limit: 10, asc: true },
    sortingColumn: 'FIELD_NAME_EMAIL',
    queries: [
      { organizationIdQuery: { id: org } },
      { orQuery: { queries: [
        { emailQuery: { address: 'ADA', method: 'TEXT_QUERY_METHOD_STARTS_WITH_IGNORE_CASE' } },
        { andQuery: { queries: [
          { emailQuery: { address: 'example.org', method: 'TEXT_QUERY_METHOD_ENDS_WITH' } },
          { notQuery: { query: { phoneQuery: { number: '+41', method: 'TEXT_QUERY_METHOD_STARTS_WITH' } } } },
        ] } },
      ] } },
    ],
  });
  const ids = listed.result.map((user) => user.userId);
  expect(JSON.stringify(ids) === JSON.stringify([ada, zoe]),
    `ListUsers: expected ${JSON.stringify([ada, zoe])}, got ${JSON.stringify(ids)}`);
  expect(listed.details.totalResult === '2', `ListUsers total: ${JSON.stringify(listed.details)}`);

  const got = (await call(users, 'GetUser', { userId: zoe })).user;
  expect(got.contact.email.address === 'zoe@example.org'
    && got.data.fields.name.stringValue === 'zoe'
    && got.state === 'USER_STATE_ACTIVE'
    && got.schema.type === `clients-${args.name}`, `GetUser: ${JSON.stringify(got)}`);

  let refused = null;
  try {
    await call(users, 'GetUser', { userId: crypto.randomUUID() });
  } catch (error) {
    refused = error;
  }
  expect(refused !== null, 'GetUser of an unknown id succeeded');
  expect(refused.code === grpc.status.NOT_FOUND && refused.details,
    `GetUser of an unknown id: ${refused.code} ${JSON.stringify(refused.details)}`);

  console.log(`node client (${args.name}, gzip ${args.gzip ? 'on' : 'off'}): `
    + 'CreateUser, nested ListUsers, GetUser, NotFound ok');
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error.message || error);
    process.exit(1);
  },
);
