package queue

import "github.com/redis/go-redis/v9"

// Every script takes the queue's key prefix (q:{<name>}:) as its first
// argument and derives the job keys it touches from it; all keys share the
// {<name>} hash tag, so they live in one slot.

// luaFinishJob marks a job finished once every task of it has ended and
// all were queued, and lets the job's hash expire keep seconds later.
const luaFinishJob = `
local function finishJob(jk, now, keep)
  local j = redis.call('HMGET', jk, 'total', 'done', 'dead', 'canceled', 'queued', 'state')
  if j[5] ~= '1' then return end
  local ended = tonumber(j[2] or '0') + tonumber(j[3] or '0') + tonumber(j[4] or '0')
  if ended < tonumber(j[1] or '0') then return end
  if j[6] == 'running' then redis.call('HSET', jk, 'state', 'finished') end
  if not redis.call('HGET', jk, 'finished') then redis.call('HSET', jk, 'finished', now) end
  redis.call('EXPIRE', jk, keep)
end
local function jobKey(prefix, tk)
  local job = redis.call('HGET', tk, 'job')
  if job and job ~= '' then return prefix .. 'job:' .. job end
  return nil
end
`

// leaseScript runs right after BLMOVE put a task in processing: it records
// the run and the lease, and returns the task. A task whose job was
// canceled comes back with status "canceled"; an ID with no hash is
// dropped from processing ("gone").
//
// KEYS: task hash, leases. ARGV: prefix, id, worker, deadline (ms).
var leaseScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('LREM', ARGV[1] .. 'processing', 1, ARGV[2])
  return {'gone'}
end
redis.call('HINCRBY', KEYS[1], 'runs', 1)
redis.call('HSET', KEYS[1], 'state', 'processing', 'worker', ARGV[3], 'lease', ARGV[4])
redis.call('ZADD', KEYS[2], ARGV[4], ARGV[2])
local status = 'ok'
local job = redis.call('HGET', KEYS[1], 'job')
if job and job ~= '' and redis.call('HGET', ARGV[1] .. 'job:' .. job, 'state') == 'canceled' then
  status = 'canceled'
end
local out = redis.call('HGETALL', KEYS[1])
table.insert(out, 1, status)
return out
`)

// finishScript ends a task as done or canceled: out of processing (or out
// of pending, when the reaper had already taken it back from a slow
// worker), onto completed. It returns 0 when the task had already ended.
//
// KEYS: processing, pending, completed, leases, task hash.
// ARGV: prefix, id, state ("done" or "canceled"), result, now (ms), keep
// (s), max completed.
var finishScript = redis.NewScript(luaFinishJob + `
local n = redis.call('LREM', KEYS[1], 1, ARGV[2])
if n == 0 then n = redis.call('LREM', KEYS[2], 1, ARGV[2]) end
if n == 0 then return 0 end
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('LPUSH', KEYS[3], ARGV[2])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[7]) - 1)
redis.call('HSET', KEYS[5], 'state', ARGV[3], 'result', ARGV[4], 'finished', ARGV[5])
redis.call('HDEL', KEYS[5], 'lease')
redis.call('EXPIRE', KEYS[5], ARGV[6])
local jk = jobKey(ARGV[1], KEYS[5])
if jk then
  redis.call('HINCRBY', jk, ARGV[3], 1)
  finishJob(jk, ARGV[5], ARGV[6])
end
return 1
`)

// failScript ends one run of a task as failed: the attempt is counted and
// the task goes back to pending, or to dead once it has failed max times.
// With onlyExpired set (the reaper), it acts only while the task's lease
// is still past due, so a lease renewed meanwhile is left alone. It
// returns 0 when it did nothing, 1 when the task was requeued, 2 when it
// went to dead.
//
// KEYS: processing, pending, dead, leases, task hash.
// ARGV: prefix, id, error, now (ms), max attempts, keep (s), onlyExpired.
var failScript = redis.NewScript(luaFinishJob + `
if ARGV[7] == '1' then
  local d = redis.call('ZSCORE', KEYS[4], ARGV[2])
  if not d or tonumber(d) > tonumber(ARGV[4]) then return 0 end
end
redis.call('ZREM', KEYS[4], ARGV[2])
if redis.call('LREM', KEYS[1], 1, ARGV[2]) == 0 then return 0 end
local a = redis.call('HINCRBY', KEYS[5], 'attempts', 1)
redis.call('HSET', KEYS[5], 'error', ARGV[3])
redis.call('HDEL', KEYS[5], 'lease')
local jk = jobKey(ARGV[1], KEYS[5])
if jk then redis.call('HINCRBY', jk, 'failed', 1) end
if a >= tonumber(ARGV[5]) then
  redis.call('LPUSH', KEYS[3], ARGV[2])
  redis.call('HSET', KEYS[5], 'state', 'dead', 'finished', ARGV[4])
  if jk then
    redis.call('HINCRBY', jk, 'dead', 1)
    finishJob(jk, ARGV[4], ARGV[6])
  end
  return 2
end
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[5], 'state', 'pending')
return 1
`)

// orphanScript gives every task in processing that has no lease (its
// worker died between BLMOVE and taking the lease) a lease that starts
// now, so the reaper returns it if nobody claims it within a lease; and
// returns up to 100 task IDs whose lease has run out.
//
// KEYS: processing, leases. ARGV: now (ms), lease (ms).
var orphanScript = redis.NewScript(`
local ids = redis.call('LRANGE', KEYS[1], 0, 9999)
for _, id in ipairs(ids) do
  if not redis.call('ZSCORE', KEYS[2], id) then
    redis.call('ZADD', KEYS[2], tonumber(ARGV[1]) + tonumber(ARGV[2]), id)
  end
end
return redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, 100)
`)

// sealScript marks a job as wholly queued, then finishes it at once if its
// tasks have all ended already (or it had none).
//
// KEYS: job hash. ARGV: now (ms), keep (s).
var sealScript = redis.NewScript(luaFinishJob + `
redis.call('HSET', KEYS[1], 'queued', '1')
finishJob(KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// cancelScript cancels a running job. It returns 0 when there is no such
// job, 1 when it was canceled, 2 when it had already ended.
//
// KEYS: job hash. ARGV: now (ms).
var cancelScript = redis.NewScript(`
local s = redis.call('HGET', KEYS[1], 'state')
if not s then return 0 end
if s ~= 'running' then return 2 end
redis.call('HSET', KEYS[1], 'state', 'canceled', 'canceled_at', ARGV[1])
return 1
`)

// enqueueOnceScript adds a task unless a task with its ID exists (pending,
// running, or finished within keep). It returns 1 when it was added.
//
// KEYS: task hash, pending. ARGV: id, then field/value pairs.
var enqueueOnceScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local fields = {}
for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('LPUSH', KEYS[2], ARGV[1])
return 1
`)
