// Start the pinned local S3 server (s3rver) on loopback.
// usage: node serve.js DIR PORT BUCKET PORTFILE
//   PORT 0 picks an ephemeral port; the port actually bound is written to
//   PORTFILE once the server listens and the bucket exists.
'use strict';
const fs = require('fs');
const S3rver = require('s3rver');

const [dir, port, bucket, portFile] = process.argv.slice(2);
if (!dir || port === undefined || !bucket || !portFile) {
  console.error('usage: node serve.js DIR PORT BUCKET PORTFILE');
  process.exit(2);
}
fs.mkdirSync(dir, { recursive: true });
// TLS when S3_LOCAL_TLS_DIR holds key.pem and cert.pem (for https tests)
const tlsDir = process.env.S3_LOCAL_TLS_DIR;
const tls = tlsDir
  ? { key: fs.readFileSync(tlsDir + '/key.pem'), cert: fs.readFileSync(tlsDir + '/cert.pem') }
  : {};
const server = new S3rver({
  ...tls,
  address: '127.0.0.1',
  port: Number(port),
  directory: dir,
  silent: true,
  configureBuckets: [{ name: bucket }],
  // virtual-hosted requests to <bucket>.s3.localhost (curl resolves *.localhost
  // to loopback itself), so path-style and virtual-hosted are both testable
  serviceEndpoint: 'localhost',
});
server.run().then(
  (addr) => {
    fs.writeFileSync(portFile + '.tmp', String(addr.port));
    fs.renameSync(portFile + '.tmp', portFile);
  },
  (err) => {
    console.error('s3rver: ' + err.message);
    process.exit(1);
  },
);
const stop = () => server.close().then(() => process.exit(0), () => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
