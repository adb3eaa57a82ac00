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

// S3 replaces an object atomically: a PUT whose body never fully arrives
// leaves the old object. s3rver 3.7.1 opens the object file with truncation
// when the PUT starts, so a client killed mid-upload leaves an empty object
// behind (ragmap's ingest crash test found an empty LATEST that way). Write
// the body to a temporary file outside the bucket tree and rename it over
// the object only once all of it (Content-Length bytes, when given) arrived.
{
  const path = require('path');
  const crypto = require('crypto');
  const { Transform } = require('stream');
  const FilesystemStore = require('s3rver/lib/stores/filesystem');
  const S3Error = require('s3rver/lib/models/error');
  const tmpDir = path.resolve(dir) + '.uploading';
  fs.mkdirSync(tmpDir, { recursive: true });
  const original = FilesystemStore.prototype.putObject;
  FilesystemStore.prototype.putObject = async function putObject(object) {
    if (Buffer.isBuffer(object.content)) return original.call(this, object);
    const objectPath = this.getResourcePath(object.bucket, object.key, 'object');
    const tmp = path.join(tmpDir, crypto.randomBytes(12).toString('hex'));
    let size = 0;
    let md5;
    try {
      await new Promise((resolve, reject) => {
        const hash = crypto.createHash('md5');
        const out = fs.createWriteStream(tmp);
        object.content.on('error', reject).on('aborted', () => reject(new Error('upload aborted')));
        out.on('error', reject).on('finish', () => {
          md5 = hash.digest('hex');
          resolve();
        });
        object.content
          .pipe(new Transform({
            transform(chunk, encoding, callback) {
              hash.update(chunk);
              size += chunk.length;
              callback(null, chunk);
            },
          }))
          .pipe(out);
      });
      // a single PUT streams the request itself; compare with its header
      const headers = object.content.headers || {};
      const want = 'content-length' in headers && !('x-amz-decoded-content-length' in headers)
        ? Number(headers['content-length']) : NaN;
      if (Number.isFinite(want) && want !== size) {
        throw new S3Error('IncompleteBody',
          'You did not provide the number of bytes specified by the Content-Length HTTP header');
      }
      await fs.promises.mkdir(path.dirname(objectPath), { recursive: true });
      await fs.promises.rename(tmp, objectPath);
    } catch (err) {
      await fs.promises.rm(tmp, { force: true });
      throw err;
    }
    await this.putMetadata(object.bucket, object.key, object.metadata, md5);
    return { size, md5 };
  };
}
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
