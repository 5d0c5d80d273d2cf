#!/usr/bin/env node
// The scenario of a Connect client: connect-es (@connectrpc/connect with its Node transport)
// over the Connect protocol, JSON or binary, reading our services from a descriptor set built
// from proto/ (protobuf-es's registry: no generated code needed).
//
// Run by scripts/clients/run.sh against a server it started: the same steps as the gRPC
// clients (an organization, a user schema and four users, a nested ListUsers, GetUser, and
// NotFound for an id that does not exist, with Connect's error code and details). With --gzip
// every request body is gzip-compressed. Exits non-zero, naming the step, on the first answer
// that differs from the expected one.
//
//   node connect.js --target 127.0.0.1:8080 --token-file admin.token \
//       --descriptor-set userdir.binpb [--binary] [--gzip]
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const { scenarioArgs } = require('./args');
const { createFileRegistry, fromBinary } = require('@bufbuild/protobuf');
const { FileDescriptorSetSchema } = require('@bufbuild/protobuf/wkt');
const { Code, ConnectError, createClient } = require('@connectrpc/connect');
const { compressionGzip, createConnectTransport } = require('@connectrpc/connect-node');

const args = scenarioArgs('connect client', 'connect', {
    'descriptor-set': { type: 'string' },
    binary: { type: 'boolean', default: false },
  }, ['descriptor-set']);

const registry = createFileRegistry(
  fromBinary(FileDescriptorSetSchema, fs.readFileSync(args['descriptor-set'])),
);
const service = (name) => {
  const found = registry.getService(`userdir.user.v1.${name}`);
  if (!found) {
    console.error(`connect client: ${name} is not in ${args['descriptor-set']}`);
    process.exit(2);
  }
  return found;
};

const token = fs.readFileSync(args['token-file'], 'utf8').trim();
// Connect over HTTP/1.1, as browsers and most proxies carry it; JSON unless --binary.
const transport = createConnectTransport({
  baseUrl: `http://${args.target}`,
  httpVersion: '1.1',
  useBinaryFormat: args.binary,
  sendCompression: args.gzip ? compressionGzip : undefined,
  // connect-es leaves bodies under 1 KiB uncompressed by default: every one is, with --gzip.
  compressMinBytes: 0,
  acceptCompression: [compressionGzip],
  interceptors: [
    (next) => async (request) => {
      request.header.set('authorization', `Bearer ${token}`);
      return next(request);
    },
  ],
});
const organizations = createClient(service('OrganizationService'), transport);
const schemas = createClient(service('UserSchemaService'), transport);
const users = createClient(service('UserService'), transport);

const label = `${args.name}, ${args.binary ? 'binary' : 'JSON'}, gzip ${args.gzip ? 'on' : 'off'}`;
function expect(condition, what) {
  if (!condition) {
    throw new Error(`connect client (${label}): ${what}`);
  }
}
const show = (value) => JSON.stringify(value, (_, v) => (typeof v === 'bigint' ? `${v}n` : v));

async function main() {
  const org = (await organizations.createOrganization({ name: `Clients ${args.name}` }))
    .organizationId;
  // google.protobuf.Struct is a plain JSON object in protobuf-es.
  const schema = (await schemas.createUserSchema({
    type: `clients-${args.name}`,
    schema: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } },
  })).schemaId;

  async function create(name, email, phone) {
    const contact = { email: { address: email, isVerified: true } };
    if (phone) contact.phone = { number: phone, isVerified: true };
    const response = await users.createUser({
      organizationId: org,
      schemaId: schema,
      data: { name },
      contact,
      usernames: [{ username: `${name}-${args.name}` }],
    });
    expect(response.userId && response.details.resourceOwner === org,
      `CreateUser ${name}: ${show(response)}`);
    return response.userId;
  }

  const ada = await create('ada', 'ada@example.com', '+41 79 000 00 01');
  await create('bob', 'bob@example.com');
  const zoe = await create('zoe', 'zoe@example.org', '+33 6 00 00 00 01');
  await create('zed', 'zed@example.org', '+41 79 000 00 02');

  // This organization's users whose email starts with "ADA" in any case, or ends with
  // "example.org" without a Swiss phone number: ada and zoe, by email. Oneofs are
  // { case, value } in protobuf-es; enums are numbers (the registry's enum values).
  const method = (name) => registry.getEnum('userdir.user.v1.TextQueryMethod')
    .values.find((v) => v.name === `TEXT_QUERY_METHOD_${name}`).number;
  const field = registry.getEnum('userdir.user.v1.FieldName')
    .values.find((v) => v.name === 'FIELD_NAME_EMAIL').number;
  const q = (kind, value) => ({ query: { case: kind, value } });
  const listed = await users.listUsers({
    query: { limit: 10, asc: true },
    sortingColumn: field,
    queries: [
      q('organizationIdQuery', { id: org }),
      q('orQuery', { queries: [
        q('emailQuery', { address: 'ADA', method: method('STARTS_WITH_IGNORE_CASE') }),
        q('andQuery', { queries: [
          q('emailQuery', { address: 'example.org', method: method('ENDS_WITH') }),
          q('notQuery', { query: q('phoneQuery', { number: '+41', method: method('STARTS_WITH') }) }),
        ] }),
      ] }),
    ],
  });
  const ids = listed.result.map((user) => user.userId);
  expect(show(ids) === show([ada, zoe]), `ListUsers: expected ${show([ada, zoe])}, got ${show(ids)}`);
  expect(listed.details.totalResult === 2n, `ListUsers total: ${show(listed.details)}`);

  const got = (await users.getUser({ userId: zoe })).user;
  const active = registry.getEnum('userdir.user.v1.State')
    .values.find((v) => v.name === 'USER_STATE_ACTIVE').number;
  expect(got.contact.email.address === 'zoe@example.org'
    && got.data.name === 'zoe'
    && got.state === active
    && got.schema.type === `clients-${args.name}`, `GetUser: ${show(got)}`);

  let refused = null;
  try {
    await users.getUser({ userId: crypto.randomUUID() });
  } catch (error) {
    refused = ConnectError.from(error);
  }
  expect(refused !== null, 'GetUser of an unknown id succeeded');
  expect(refused.code === Code.NotFound && refused.rawMessage,
    `GetUser of an unknown id: ${refused.code} ${refused.rawMessage}`);

  console.log(`connect client (${label}): CreateUser, nested ListUsers, GetUser, NotFound ok`);
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error.message || error);
    process.exit(1);
  },
);
