// KafkaJS compatibility cases. Run by cases.py (lib/harness.py) one case per process:
//   node cases.js CASE HOST:PORT
// The last stdout line is "RESULT PASS" | "RESULT FAIL <reason>" | "RESULT SKIP <reason>".
// KafkaJS has no assign()/seek(): outside group_* cases records are read back with the client's own
// Fetch path (the Broker object of KafkaJS's Cluster, explicit fetch offsets, no group), never a
// consumer group. Producers are non-idempotent except in idempotent_producer.
'use strict'
const path = require('path')
const assert = require('assert')
const util = require('util')
const CACHE = process.env.RIVULET_CACHE || path.join(process.env.HOME, '.cache', 'rivulet-compat')
const { Kafka, CompressionTypes, logLevel, AssignerProtocol } = require(path.join(CACHE, 'npm', 'node_modules', 'kafkajs'))

const [caseName, bootstrap] = process.argv.slice(2)
class Skip extends Error {}
class Fail extends Error {}
const check = (cond, msg) => { if (!cond) throw new Fail(msg) }
const short = v => { const s = util.inspect(v, { depth: 6, breakLength: Infinity }); return s.length > 300 ? s.slice(0, 300) + '...' : s }
const checkEq = (got, want, what) => {
  try { assert.deepStrictEqual(got, want) } catch (e) { throw new Fail(`${what}: got ${short(got)}, want ${short(want)}`) }
}
const sleep = ms => new Promise(r => setTimeout(r, ms))
const rnd = () => Math.random().toString(36).slice(2, 10)
const freshTopic = tag => `compat-${tag}-${Math.floor(Date.now() / 1000)}-${rnd()}`.replace(/[^a-zA-Z0-9._-]/g, '-')

const kafka = new Kafka({
  clientId: 'compat-kafkajs',
  brokers: [bootstrap],
  logLevel: logLevel.WARN,
  logCreator: () => ({ namespace, level, label, log }) => process.stderr.write(`[${label}] ${namespace} ${JSON.stringify(log)}\n`),
  retry: { retries: 5 },
  requestTimeout: 20000,
})

async function withAdmin (fn) {
  const admin = kafka.admin()
  await admin.connect()
  try { return await fn(admin) } finally { await admin.disconnect() }
}

async function createTopic (topic, numPartitions = 1) {
  await withAdmin(async admin => {
    const created = await admin.createTopics({ topics: [{ topic, numPartitions, replicationFactor: 1 }], waitForLeaders: true, timeout: 15000 })
    checkEq(created, true, `createTopics(${topic}) result`)
    const md = await admin.fetchTopicMetadata({ topics: [topic] })
    checkEq(md.topics.map(t => t.name), [topic], 'fetchTopicMetadata topics')
    checkEq(md.topics[0].partitions.map(p => p.partitionId).sort(), [...Array(numPartitions).keys()], 'partition ids')
    check(md.topics[0].partitions.every(p => p.leader >= 0), 'partition without leader: ' + short(md.topics[0].partitions))
  })
  return topic
}

// Reads partition records from `start` with explicit Fetch requests through KafkaJS's Broker object.
async function fetchRecords (topic, partition, start, want, extraMs = 1000) {
  const sym = Object.getOwnPropertySymbols(kafka).find(s => s.description === 'private:Kafka:createCluster')
  const cluster = kafka[sym]({ allowAutoTopicCreation: false })
  await cluster.connect()
  try {
    await cluster.addTargetTopic(topic)
    await cluster.refreshMetadata()
    const leaders = cluster.findLeaderForPartitions(topic, [partition])
    const broker = await cluster.findBroker({ nodeId: Object.keys(leaders)[0] })
    const out = []
    let offset = start
    const deadline = Date.now() + 30000
    let extraEnd = null
    for (;;) {
      if (out.length >= want && extraEnd === null) extraEnd = Date.now() + extraMs
      if (extraEnd !== null && Date.now() >= extraEnd) break
      check(Date.now() < deadline, `only ${out.length} of ${want} records fetched within 30 s`)
      const res = await broker.fetch({ maxWaitTime: 200, topics: [{ topic, partitions: [{ partition, fetchOffset: String(offset), maxBytes: 1048576 }] }] })
      for (const r of res.responses) {
        for (const p of r.partitions) {
          checkEq(p.errorCode, 0, `fetch error code ${topic}/${p.partition}`)
          for (const m of p.messages) {
            if (BigInt(m.offset) < BigInt(offset)) continue // a batch starts before the fetch offset
            out.push(m)
            offset = Number(m.offset) + 1
          }
        }
      }
    }
    return out
  } finally { await cluster.disconnect() }
}

const buf = v => (v === null || v === undefined) ? null : Buffer.from(v)
function normHeaders (h) {
  const o = {}
  for (const [k, v] of Object.entries(h || {})) o[k] = Array.isArray(v) ? v.map(x => x === null ? null : Buffer.from(x).toString('latin1')) : (v === null ? null : Buffer.from(v).toString('latin1'))
  return o
}
function checkRecords (got, want, first = 0) {
  checkEq(got.length, want.length, 'number of records fetched')
  got.forEach((m, i) => {
    const w = want[i]
    checkEq(m.offset, String(first + i), `record ${i} offset`)
    checkEq(m.key, buf(w.key), `record ${i} key`)
    checkEq(m.value, buf(w.value), `record ${i} value`)
    checkEq(normHeaders(m.headers), normHeaders(w.headers), `record ${i} headers`)
    if (w.timestamp) checkEq(m.timestamp, w.timestamp, `record ${i} timestamp`)
  })
}

async function withProducer (conf, fn) {
  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false, ...conf })
  await producer.connect()
  try { return await fn(producer) } finally { await producer.disconnect() }
}

// Sends `msgs` one send() per chunk to partition 0 and checks every chunk's base offset.
async function roundtrip (msgs, { acks = -1, compression = CompressionTypes.None, chunk = 1, producerConf = {} } = {}) {
  const topic = await createTopic(freshTopic(caseName))
  await withProducer(producerConf, async producer => {
    for (let i = 0; i < msgs.length; i += chunk) {
      const part = msgs.slice(i, i + chunk).map(m => ({ ...m, partition: 0 }))
      const md = await producer.send({ topic, acks, compression, messages: part })
      checkEq(md.map(r => [r.topicName, r.partition, r.errorCode, r.baseOffset]), [[topic, 0, 0, String(i)]], `send() of records ${i}.. record metadata`)
    }
  })
  checkRecords(await fetchRecords(topic, 0, 0, msgs.length), msgs)
  return topic
}

const cases = {}

cases.admin_create_describe_delete = async () => {
  const topic = await createTopic(freshTopic(caseName), 3)
  await withAdmin(async admin => {
    check((await admin.listTopics()).includes(topic), 'created topic not in listTopics')
    await admin.deleteTopics({ topics: [topic], timeout: 15000 })
    const deadline = Date.now() + 10000
    while ((await admin.listTopics()).includes(topic)) {
      check(Date.now() < deadline, 'deleted topic still listed after 10 s')
      await sleep(200)
    }
    let err = null
    try { await admin.fetchTopicMetadata({ topics: [topic] }) } catch (e) { err = e }
    check(err && /UNKNOWN_TOPIC_OR_PARTITION|does not host this topic-partition/i.test(String(err.type || err.message)),
      'fetchTopicMetadata of the deleted topic: want UNKNOWN_TOPIC_OR_PARTITION, got ' + short(err && (err.type || err.message)))
  })
}

cases.headers_roundtrip = () => roundtrip([
  { key: 'k0', value: 'v0', headers: { a: ['1', '2'], b: '', c: Buffer.from([0, 255]) } },
  { key: 'k1', value: 'v1', headers: {} },
  { key: '', value: '', headers: { only: 'x'.repeat(100) } },
], { chunk: 3 })

cases.null_key = () => roundtrip([
  ...[0, 1, 2, 3, 4].map(i => ({ key: null, value: `v${i}` })),
  { key: '', value: 'empty-key' },
], { chunk: 2 })

cases.null_value_tombstone = () => roundtrip([
  { key: 'k', value: 'v' }, { key: 'k', value: null }, { key: 'k2', value: '' },
], { chunk: 3 })

cases.compression_none = () => roundtrip(
  [...Array(100).keys()].map(i => ({ key: `k${i}`, value: `value-${i}-`.repeat(50), headers: { i: String(i) } })),
  { chunk: 50 })

cases.compression_gzip = () => roundtrip(
  [...Array(200).keys()].map(i => ({ key: `k${i}`, value: `value-${i}-`.repeat(50), headers: { i: String(i) } })),
  { chunk: 100, compression: CompressionTypes.GZIP })

for (const codec of ['snappy', 'lz4', 'zstd']) {
  cases['compression_' + codec] = async () => {
    throw new Skip(`KafkaJS ships only the gzip codec (${codec} needs a third-party codec package)`)
  }
}

cases.acks_1 = () => roundtrip([...Array(10).keys()].map(i => ({ key: `k${i}`, value: `v${i}` })), { acks: 1, chunk: 1 })
cases.acks_all = () => roundtrip([...Array(10).keys()].map(i => ({ key: `k${i}`, value: `v${i}` })), { acks: -1, chunk: 1 })

cases.fetch_mid_batch = async () => {
  const msgs = [...Array(20).keys()].map(i => ({ key: `k${i}`, value: `v${i}`, timestamp: String(1700000000000 + i) }))
  const topic = await roundtrip(msgs, { chunk: 20, compression: CompressionTypes.GZIP })
  checkRecords(await fetchRecords(topic, 0, 7, 13), msgs.slice(7), 7)
}

cases.list_offsets_earliest_latest = async () => {
  const topic = await roundtrip([...Array(7).keys()].map(i => ({ key: null, value: `v${i}` })), { chunk: 7 })
  await withAdmin(async admin => {
    const offs = await admin.fetchTopicOffsets(topic)
    checkEq(offs.map(o => [o.partition, o.low, o.high, o.offset]), [[0, '0', '7', '7']], 'fetchTopicOffsets [partition, low, high, offset]')
  })
}

cases.multi_partition_explicit = async () => {
  const topic = await createTopic(freshTopic(caseName), 3)
  const msgs = [...Array(12).keys()].map(i => ({ key: `k${i}`, value: `v${i}`, partition: i % 3 }))
  await withProducer({}, async producer => {
    const md = await producer.send({ topic, acks: -1, messages: msgs })
    checkEq(md.map(r => [r.partition, r.errorCode, r.baseOffset]).sort(), [[0, 0, '0'], [1, 0, '0'], [2, 0, '0']], 'record metadata')
  })
  for (let p = 0; p < 3; p++) checkRecords(await fetchRecords(topic, p, 0, 4, 500), msgs.filter(m => m.partition === p))
}

cases.idempotent_producer = async () => {
  const topic = await createTopic(freshTopic(caseName), 3)
  const msgs = [...Array(30).keys()].map(i => ({ key: `k${i}`, value: `idem-${i}`, headers: { n: String(i) }, partition: i % 3 }))
  await withProducer({ idempotent: true, maxInFlightRequests: 1 }, async producer => {
    for (let i = 0; i < msgs.length; i += 6) {
      const md = await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages: msgs.slice(i, i + 6) })
      checkEq(md.map(r => [r.partition, r.errorCode, r.baseOffset]).sort(), [0, 1, 2].map(p => [p, 0, String(i / 3)]), `send() of records ${i}.. record metadata`)
    }
  })
  for (let p = 0; p < 3; p++) checkRecords(await fetchRecords(topic, p, 0, 10, 500), msgs.filter(m => m.partition === p))
}

// ------------------------------------------------------------------ consumer groups

function groupConsumer (groupId) {
  return kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 500, rebalanceTimeout: 20000, allowAutoTopicCreation: false, retry: { retries: 5 } })
}

// Runs one member until `expect` (Map "p@offset" -> value) is consumed; fails on duplicates or extras.
async function consumeExactly (consumer, topic, expect, { commit = true, keepRunning = false } = {}) {
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  const seen = new Map()
  let bad = null
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      const k = `${partition}@${message.offset}`
      if (seen.has(k)) bad = bad || `record ${k} consumed twice`
      else if (!expect.has(k)) bad = bad || `unexpected record ${k} (${message.value})`
      seen.set(k, message.value === null ? null : message.value.toString())
    },
  })
  const deadline = Date.now() + 45000
  while (seen.size < expect.size && !bad) {
    check(Date.now() < deadline, `only ${seen.size} of ${expect.size} records consumed within 45 s`)
    await sleep(100)
  }
  await sleep(1000)
  check(!bad, bad)
  checkEq(new Map([...seen].sort()), new Map([...expect].sort()), 'records consumed (partition@offset -> value)')
  if (commit) {
    const ends = new Map()
    for (const k of expect.keys()) { const [p, o] = k.split('@').map(Number); ends.set(p, Math.max(ends.get(p) ?? -1, o + 1)) }
    await consumer.commitOffsets([...ends].map(([partition, o]) => ({ topic, partition, offset: String(o) })))
    return ends
  }
  if (!keepRunning) await consumer.disconnect()
}

async function produceForGroup (topic, n, tag) {
  const expect = new Map()
  await withProducer({}, async producer => {
    const msgs = [...Array(n).keys()].map(i => ({ key: `k${i}`, value: `${tag}${i}`, partition: i % 2 }))
    const md = await producer.send({ topic, acks: -1, messages: msgs })
    for (const r of md) {
      checkEq(r.errorCode, 0, 'produce error code')
      msgs.filter(m => m.partition === r.partition).forEach((m, j) => expect.set(`${r.partition}@${Number(r.baseOffset) + j}`, m.value))
    }
  })
  return expect
}

cases.group_consume = async () => {
  const topic = await createTopic(freshTopic(caseName), 2)
  const groupId = 'compat-group-' + topic
  const first = await produceForGroup(topic, 10, 'g')
  checkEq([...first.keys()].sort(), ['0@0', '0@1', '0@2', '0@3', '0@4', '1@0', '1@1', '1@2', '1@3', '1@4'], 'acked positions')
  const c1 = groupConsumer(groupId)
  try { checkEq([...(await consumeExactly(c1, topic, first))].sort(), [[0, 5], [1, 5]], 'offsets committed') } finally { await c1.disconnect() }
  await withAdmin(async admin => {
    const offs = await admin.fetchOffsets({ groupId, topics: [topic] })
    checkEq(offs.map(t => [t.topic, t.partitions.map(p => [p.partition, p.offset]).sort()]), [[topic, [[0, '5'], [1, '5']]]], 'fetchOffsets after the first member')
  })
  const second = await produceForGroup(topic, 4, 'h')
  checkEq([...second.keys()].sort(), ['0@5', '0@6', '1@5', '1@6'], 'acked positions (second batch)')
  const c2 = groupConsumer(groupId)
  try { await consumeExactly(c2, topic, second) } finally { await c2.disconnect() }
  await withAdmin(async admin => {
    const offs = await admin.fetchOffsets({ groupId, topics: [topic] })
    checkEq(offs.map(t => [t.topic, t.partitions.map(p => [p.partition, p.offset]).sort()]), [[topic, [[0, '7'], [1, '7']]]], 'fetchOffsets after the second member')
  })
}

cases.group_admin = async () => {
  const topic = await createTopic(freshTopic(caseName), 2)
  const groupId = 'compat-group-' + topic
  const expect = await produceForGroup(topic, 6, 'a')
  const c = groupConsumer(groupId)
  try {
    await consumeExactly(c, topic, expect)
    await withAdmin(async admin => {
      const { groups } = await admin.listGroups()
      const mine = groups.filter(g => g.groupId === groupId)
      checkEq(mine.map(g => [g.groupId, g.protocolType]), [[groupId, 'consumer']], 'listGroups entry')
      const d = await admin.describeGroups([groupId])
      checkEq(d.groups.length, 1, 'describeGroups groups')
      const g = d.groups[0]
      checkEq([g.groupId, g.errorCode, g.state, g.protocolType, g.protocol], [groupId, 0, 'Stable', 'consumer', 'RoundRobinAssigner'], 'describeGroups [id, error, state, protocolType, protocol]')
      checkEq(g.members.length, 1, 'members')
      checkEq(g.members[0].clientId, 'compat-kafkajs', 'member clientId')
      check(g.members[0].memberId.startsWith('compat-kafkajs'), 'memberId ' + g.members[0].memberId)
      const asg = AssignerProtocol.MemberAssignment.decode(g.members[0].memberAssignment)
      checkEq(Object.fromEntries(Object.entries(asg.assignment).map(([t, ps]) => [t, [...ps].sort()])), { [topic]: [0, 1] }, 'member assignment')
      const meta = AssignerProtocol.MemberMetadata.decode(g.members[0].memberMetadata)
      checkEq(meta.topics, [topic], 'member subscription')
      const offs = await admin.fetchOffsets({ groupId, topics: [topic] })
      checkEq(offs.map(t => [t.topic, t.partitions.map(p => [p.partition, p.offset]).sort()]), [[topic, [[0, '3'], [1, '3']]]], 'fetchOffsets')
    })
  } finally { await c.disconnect() }
  await withAdmin(async admin => {
    const d = await admin.describeGroups([groupId])
    checkEq([d.groups[0].state, d.groups[0].members.length], ['Empty', 0], 'describeGroups after the member left [state, members]')
    const offs = await admin.fetchOffsets({ groupId, topics: [topic] })
    checkEq(offs.map(t => [t.topic, t.partitions.map(p => [p.partition, p.offset]).sort()]), [[topic, [[0, '3'], [1, '3']]]], 'fetchOffsets of the empty group')
  })
}

async function main () {
  const fn = cases[caseName]
  if (caseName === '--list') { console.log(Object.keys(cases).join('\n')); return }
  if (!fn) { console.log(`RESULT FAIL no such case ${caseName}`); process.exitCode = 1; return }
  try {
    await fn()
    console.log('RESULT PASS')
  } catch (e) {
    process.stderr.write((e && e.stack) + '\n')
    if (e instanceof Skip) { console.log('RESULT SKIP ' + e.message); return }
    const msg = e instanceof Fail ? e.message : `${e && e.name}: ${e && e.message}${e && e.type ? ' [' + e.type + ']' : ''}`
    console.log('RESULT FAIL ' + msg.replace(/\n/g, ' | '))
    process.exitCode = 1
  }
}
main().then(() => process.exit())
