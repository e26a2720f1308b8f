--[[
  Read-only: what the alerts and the Prometheus scrape know of one queue beyond its counts.

    counts.lua's reply (the counts, paused flag, version, broken keys, failure recency), then
    { completed total or false, failed total or false }   the `count` fields of metrics:completed /
                                                         metrics:failed, as Node's exporter reads them
    oldest waiting since (ms) or false                    see includes/oldest_waiting.lua
    { concurrency, max, duration, limiter count, limiter PTTL, { oversized name, bytes, ... } }
                                                         the global concurrency and rate limit (`meta`
                                                         fields, BullMQ >= 5) and the `limiter` key;
                                                         each value a string or false (absent), read
                                                         only when HSTRLEN / STRLEN says it is at most
                                                         32 bytes (longer ones are named with their size)
    { dependency key, ... } or false                      what the first ARGV[5] parents of
                                                         `waiting-children` wait on (ARGV[6] keys each)
    the events tally or false (when ARGV[2] is "")

  The events tally counts the `completed`, `failed`, `stalled` and `deduplicated` events of the
  queue's stream after
  the id ARGV[2] (exclusive), at most ARGV[3] entries and about ARGV[4] bytes copied (entries are
  copied whole: a failed event carries its failedReason, which a job author can make huge), by the
  minute of their id:
    { last id read, capped (1 when the entry or byte cap stopped the read), problem ("", "future" or
      "error: ..."), minute ms, completed, failed, stalled, deduplicated, minute ms, ... }
  The caller keeps the last id and asks for what came after it on the next tick, so a tick reads
  only the events since the one before.

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
    ARGV[1]  now, in ms
    ARGV[2]  events stream id to count after ("" for no tally)
    ARGV[3]  most entries to read
    ARGV[4]  byte budget of the read
    ARGV[5]  waiting-children parents to sample (0: none)
    ARGV[6]  dependency keys to read per parent
]]
local rcall = redis.call

-- @include list_count
-- @include queue_counts
-- @include bounded_copy
-- @include oldest_waiting

local function total(key)
  local ok, size = pcall(rcall, "HSTRLEN", key, "count")
  if not ok or size > 32 then
    return false
  end
  return rcall("HGET", key, "count") or "0"
end

-- Meta fields and the limiter's counter are numbers BullMQ writes; anything longer is not copied.
local MAX_NUMBER_BYTES = 32

-- A field of `meta` when it is short enough; its size goes to `oversized` otherwise.
local function metaField(key, field, oversized)
  local ok, size = pcall(rcall, "HSTRLEN", key, field)
  if not ok or size == 0 then
    return false
  end
  if size > MAX_NUMBER_BYTES then
    oversized[#oversized + 1] = field
    oversized[#oversized + 1] = size
    return false
  end
  return rcall("HGET", key, field)
end

-- The global concurrency and rate limit (Queue.setGlobalConcurrency / setGlobalRateLimit write them
-- to `meta`) and the `limiter` key: BullMQ's workers INCR it per job started and PEXPIRE it for the
-- rate limit's duration; Worker.rateLimit / Queue.rateLimit SET it to 2^53 - 1 with a PX. Its PTTL
-- is what getRateLimitTtl reports (-2: no key, -1: no expiry).
local function limits(p)
  local oversized = {}
  local meta = p .. "meta"
  local reply = {
    metaField(meta, "concurrency", oversized),
    metaField(meta, "max", oversized),
    metaField(meta, "duration", oversized),
  }
  local limiter = p .. "limiter"
  local count = false
  local kind = rcall("TYPE", limiter)["ok"]
  if kind == "string" then
    local size = rcall("STRLEN", limiter)
    if size > MAX_NUMBER_BYTES then
      oversized[#oversized + 1] = "limiter"
      oversized[#oversized + 1] = size
    else
      count = rcall("GET", limiter)
    end
  end
  reply[4] = count
  reply[5] = rcall("PTTL", limiter)
  reply[6] = oversized
  return reply
end

-- The keys the first `parents` jobs of `waiting-children` (the oldest) wait on: at most `each` of the
-- members of each one's `:dependencies` set (its unprocessed children, `<prefix>:<queue>:<id>`), keys
-- over MAX_WAITING_ID bytes left out, each key once. Members are read only from a zset or set that is
-- small, or small on average (smallEnough of includes/oldest_waiting.lua), as the job next in line is.
-- The zset's sample (SAMPLES n) measures its first n members, the very ones ZRANGE copies; a set's
-- measures the first members of its hash table while SRANDMEMBER picks others, so a huge member hides
-- from any sample: a set is measured whole (SAMPLES 0), and only up to MAX_MEASURED_CHILDREN members.
local MAX_MEASURED_CHILDREN = 1024
local function waitingOn(p, parents, each)
  if parents <= 0 or each <= 0 then
    return false
  end
  local key = p .. "waiting-children"
  local ok, kind = pcall(rcall, "TYPE", key)
  if not ok or kind["ok"] ~= "zset" then
    return false
  end
  local count = rcall("ZCARD", key)
  if count == 0 or not smallEnough(key, count, parents) then
    return false
  end
  local found, seen = {}, {}
  for _, parentId in ipairs(rcall("ZRANGE", key, 0, parents - 1)) do
    if #parentId <= MAX_WAITING_ID then
      local dependencies = p .. parentId .. ":dependencies"
      local typed, setKind = pcall(rcall, "TYPE", dependencies)
      if typed and setKind["ok"] == "set" then
        local size = rcall("SCARD", dependencies)
        if size > 0 and size <= MAX_MEASURED_CHILDREN and smallEnough(dependencies, size, 0) then
          for _, child in ipairs(rcall("SRANDMEMBER", dependencies, each)) do
            if #child <= MAX_WAITING_ID and not seen[child] then
              seen[child] = true
              found[#found + 1] = child
            end
          end
        end
      end
    end
  end
  return found
end

local WANTED = { completed = 1, failed = 2, stalled = 3, deduplicated = 4 }

local function eventName(fields)
  for i = 1, #fields - 1, 2 do
    if fields[i] == "event" then
      return fields[i + 1]
    end
  end
  return nil
end

-- Entries more than a minute ahead of `now` were written with explicit ids by someone else than
-- BullMQ (whose ids are Redis's clock): counting them would keep them in the window for as long as
-- they are ahead, so the tally says "future" instead and counts nothing.
local FUTURE_MS = 60000

local function idMs(id)
  return tonumber(string.match(id, "^(%d+)"))
end

local function tally(key, after, limit, budget, now)
  local kind = rcall("TYPE", key)["ok"]
  if kind == "none" then
    return { after, 0, "" }
  end
  if kind ~= "stream" then
    return false
  end
  local afterMs = idMs(after)
  if afterMs and afterMs > now + FUTURE_MS then
    return { after, 0, "future" }
  end
  local entries, spent = boundedStreamAfter(key, after, limit, budget)
  local last = after
  local order, minutes = {}, {}
  for _, entry in ipairs(entries) do
    local ms = idMs(entry[1]) or 0
    if ms > now + FUTURE_MS then
      return { after, 0, "future" }
    end
    last = entry[1]
    local slot = WANTED[eventName(entry[2])]
    if slot then
      local minute = ms - ms % 60000
      local bucket = minutes[minute]
      if not bucket then
        bucket = { 0, 0, 0, 0 }
        minutes[minute] = bucket
        order[#order + 1] = minute
      end
      bucket[slot] = bucket[slot] + 1
    end
  end
  local capped = (#entries >= limit or spent >= budget) and 1 or 0
  local reply = { last, capped, "" }
  for _, minute in ipairs(order) do
    local bucket = minutes[minute]
    reply[#reply + 1] = string.format("%.0f", minute)
    reply[#reply + 1] = bucket[1]
    reply[#reply + 1] = bucket[2]
    reply[#reply + 1] = bucket[3]
    reply[#reply + 1] = bucket[4]
  end
  return reply
end

local p = KEYS[1]
local reply = queueCounts(p, ARGV[1])
local version = reply[10]
reply[#reply + 1] = { total(p .. "metrics:completed"), total(p .. "metrics:failed") }
reply[#reply + 1] = oldestWaitingSince(p, isLegacyQueue(p, version))
reply[#reply + 1] = limits(p)
reply[#reply + 1] = waitingOn(p, tonumber(ARGV[5]) or 0, tonumber(ARGV[6]) or 0)
if ARGV[2] ~= "" then
  -- An error of the tally (an id Redis refuses to range from) must not fail the counts read above.
  local ok, counted = pcall(tally, p .. "events", ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), nowMs(ARGV[1]))
  if ok then
    reply[#reply + 1] = counted
  else
    reply[#reply + 1] = { ARGV[2], 0, "error: " .. tostring(counted) }
  end
else
  reply[#reply + 1] = false
end
return reply
