--[[
  Read-only: what the dashboard's sampler (queues/sampling.py) needs to record one queue's completed and
  failed jobs of the minutes since it last recorded one, for a queue whose workers do not record
  BullMQ's metrics.

  Per minute, two counts of each type:
  - the `completed` / `failed` events of the queue's events stream with ids in that minute (BullMQ
    adds one when a job finishes for good, in the script that finishes it), read only when the minutes
    are still in the stream: the stream is trimmed to about `opts.maxLenEvents` entries (10,000 by
    default), and entries are copied whole (a failed event carries its failedReason, a completed one
    its return value), so at most ARGV[3] entries and about ARGV[4] bytes are read: in one XRANGE when
    the whole stream takes at most ARGV[4] bytes (MEMORY USAGE … SAMPLES 0), else one entry at a time
    only when its entries take ARGV[6] bytes or less on average (or MEMORY is refused: then what is
    copied is at most ARGV[4] bytes plus one entry), else not at all (one failed event with a 128 MB
    reason held Redis for as long as it took to copy, every tick): the minutes are then counted from
    the finished sets alone, as lower bounds;
  - ZCOUNT of the completed / failed set over the minute (scored by finishedOn): O(log n), and exact
    while the jobs are kept, but jobs removed on completion (removeOnComplete / removeOnFail) are gone.
  The stream is complete for a minute when its read was not cut before the minute's end and it reaches
  back before the first minute counted (or was never trimmed: shorter than maxLenEvents).

  A sample entry more than a minute ahead of Redis's clock (left by a Redis whose clock was set back,
  or written by someone else) would stop the sampling of the queue until that time, since a stream
  takes no id below its newest: the reply is then "future", and queues.sampling deletes the key (the
  dashboard's own) before it writes the minutes due. Only by Redis's clock (TIME): processes' clocks
  differ, and one behind the others must not take their minutes for the future.

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
    KEYS[2]  the dashboard's sample key of the queue
    ARGV[1]  the newest minute to record (ms, a multiple of 60000); never one that has not ended by
             Redis's clock
    ARGV[2]  how many minutes back a tick counts at most
    ARGV[3]  most stream entries read
    ARGV[4]  byte budget of the stream read
    ARGV[5]  average bytes of an entry under which a stream over the budget is read entry by entry

  Returns one of
    { "live" }                           the workers record BullMQ's metrics: nothing to sample
    { "wrongtype", key, type }           the sample key holds another type (not a stream)
    { "taken", "<prefix>:<name>" }       the sample key would be a key of that queue (a job's)
    { "done", PTTL of the sample key }   every minute up to ARGV[1] is recorded already
    { "count", covered (0/1), cut at (ms of the first minute the read did not finish, or false),
      minute, events completed, events failed, set completed or false, set failed or false, ... }
    { "future", ... }                    the same as "count", for a sample key whose newest entry is
                                         over a minute ahead of the clock (to be deleted first)
]]
local rcall = redis.call
local p = KEYS[1]
local sampleKey = KEYS[2]
local newestMinute = tonumber(ARGV[1])
local catchUp = tonumber(ARGV[2])
local maxEntries = tonumber(ARGV[3])
local budget = tonumber(ARGV[4])
local averageBytes = tonumber(ARGV[5]) or 0
local MINUTE = 60000
local DEFAULT_MAX_LEN_EVENTS = 10000

-- @include bounded_copy
-- @include metrics_live

local function ms(value)
  return string.format("%.0f", value)
end

if metricsLive(p) == 1 then
  return { "live" }
end

local sampleType = rcall("TYPE", sampleKey)["ok"]
if sampleType ~= "stream" and sampleType ~= "none" then
  return { "wrongtype", sampleKey, sampleType }
end

-- A sample key that starts with the key prefix of a queue (`<prefix>:<name>:`, whose `meta` is a hash
-- or `id` a string) is the key of one of that queue's jobs: a queue `bull` under the prefix
-- `<key prefix>:samples` has its job `q` at the sample key of the queue `bull:q`. Not written. (Keys
-- of another cluster slot cannot be such a queue's: BullMQ keeps a queue's keys in one slot.)
local colons, from = 0, 1
while true do
  local at = string.find(sampleKey, ":", from, true)
  if not at or at >= #sampleKey then
    break
  end
  colons = colons + 1
  local head = string.sub(sampleKey, 1, at)
  if colons >= 2 then
    local okMeta, metaType = pcall(rcall, "TYPE", head .. "meta")
    local okId, idType = pcall(rcall, "TYPE", head .. "id")
    if (okMeta and metaType["ok"] == "hash") or (okId and idType["ok"] == "string") then
      return { "taken", string.sub(head, 1, -2) }
    end
  end
  from = at + 1
end

-- Never a minute that has not ended by Redis's clock (event ids are Redis time): a process whose
-- clock runs ahead must not record minutes whose events are still to come. (An ACL may deny TIME.)
local timed, time = pcall(rcall, "TIME")
local now = nil
if timed then
  now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
  newestMinute = math.min(newestMinute, now - now % MINUTE - MINUTE)
end

-- From the minute after the newest one recorded, at most `catchUp` minutes back (a first tick too).
local firstMinute = newestMinute - (catchUp - 1) * MINUTE
local kind = "count"
if sampleType == "stream" then
  local newest = rcall("XREVRANGE", sampleKey, "+", "-", "COUNT", 1)[1]
  local last = newest and tonumber(string.match(newest[1], "^(%d+)"))
  if last and now and last > now + MINUTE then
    kind = "future"
  elseif last then
    firstMinute = math.max(last - last % MINUTE + MINUTE, firstMinute)
  end
end
if firstMinute > newestMinute then
  return { "done", rcall("PTTL", sampleKey) }
end
local minutes = (newestMinute - firstMinute) / MINUTE + 1

local eventsKey = p .. "events"
local streamType = rcall("TYPE", eventsKey)["ok"]
local completedEvents, failedEvents = {}, {}
for i = 1, minutes do
  completedEvents[i], failedEvents[i] = 0, 0
end

local function eventName(fields)
  for i = 1, #fields - 1, 2 do
    if fields[i] == "event" then
      return fields[i + 1]
    end
  end
  return nil
end

local function tally(entry)
  local stamp = tonumber(string.match(entry[1], "^(%d+)"))
  if not stamp then
    return
  end
  local slot = math.floor((stamp - firstMinute) / MINUTE) + 1
  if slot < 1 or slot > minutes then
    return
  end
  local event = eventName(entry[2])
  if event == "completed" then
    completedEvents[slot] = completedEvents[slot] + 1
  elseif event == "failed" then
    failedEvents[slot] = failedEvents[slot] + 1
  end
end

-- covered: the stream holds every event of the minutes; cutAt: the minute from which the read was cut.
local covered, cutAt = 0, false
if streamType == "none" then
  covered = 1 -- no job of this queue ever finished with an event (or the stream was deleted)
elseif streamType == "stream" then
  local fromId, toId = ms(firstMinute), ms(newestMinute + MINUTE - 1)
  local bytes = keyBytes(eventsKey)
  local whole = bytes ~= nil and bytes <= budget
  -- Entry by entry copies the budget plus one entry, and no entry is larger than the whole stream: only
  -- when its entries are small on average (or nothing is known: MEMORY refused).
  local stepwise = not whole
    and (bytes == nil or bytes <= averageBytes * math.max(1, rcall("XLEN", eventsKey)))
  local lastRead, cut = nil, false
  if not whole and not stepwise then
    cut = true
  elseif whole then
    local entries = rcall("XRANGE", eventsKey, fromId, toId, "COUNT", maxEntries)
    for _, entry in ipairs(entries) do
      tally(entry)
      lastRead = entry[1]
    end
    cut = #entries >= maxEntries
  else
    local spent, count, start = 0, 0, fromId
    while true do
      if count >= maxEntries or spent >= budget then
        cut = true
        break
      end
      local next = rcall("XRANGE", eventsKey, start, toId, "COUNT", 1)
      if #next == 0 then
        break
      end
      tally(next[1])
      lastRead = next[1][1]
      spent = spent + entryBytes(next[1])
      count = count + 1
      start = "(" .. lastRead
    end
  end
  if cut and lastRead then
    local stamp = tonumber(string.match(lastRead, "^(%d+)")) or firstMinute
    cutAt = stamp - stamp % MINUTE
  elseif cut then
    cutAt = firstMinute
  end
  -- Does the stream reach back before the first minute? Trimming (XTRIM MAXLEN ~) never takes it below
  -- maxLenEvents entries, so a shorter stream was never trimmed; a longer one is asked for an entry
  -- before the minute, which copies one entry: only when the whole stream fits the budget.
  local maxLen = DEFAULT_MAX_LEN_EVENTS
  local okMeta, size = pcall(rcall, "HSTRLEN", p .. "meta", "opts.maxLenEvents")
  if okMeta and size > 0 and size <= 32 then
    maxLen = tonumber(rcall("HGET", p .. "meta", "opts.maxLenEvents")) or maxLen
  end
  if rcall("XLEN", eventsKey) < maxLen then
    covered = 1
  elseif whole and #rcall("XREVRANGE", eventsKey, ms(firstMinute - 1), "-", "COUNT", 1) > 0 then
    covered = 1
  end
end

local function zcount(kind, minute)
  local ok, n = pcall(rcall, "ZCOUNT", p .. kind, ms(minute), ms(minute + MINUTE - 1))
  if ok then
    return n
  end
  return false
end

local reply = { kind, covered, cutAt }
for i = 1, minutes do
  local minute = firstMinute + (i - 1) * MINUTE
  reply[#reply + 1] = ms(minute)
  reply[#reply + 1] = completedEvents[i]
  reply[#reply + 1] = failedEvents[i]
  reply[#reply + 1] = zcount("completed", minute)
  reply[#reply + 1] = zcount("failed", minute)
end
return reply
