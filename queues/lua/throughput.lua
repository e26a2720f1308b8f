--[[
  Read-only: what one queue finished per minute over a part of a window of whole minutes, from BullMQ's
  metrics keys, for queues.throughput. The dashboard's own samples are read by another script
  (throughput_samples.lua) in the same pipeline: Redis refuses a script as a whole when the user may
  not read one of its KEYS, and a Redis user allowed the queues' keys only (an ACL of `~bull:*`) must
  still see BullMQ's metrics.

  BullMQ's metrics, written in moveToFinished by workers that run with `metrics: {maxDataPoints}`
  (collectMetrics.lua): the hash `metrics:<type>` holds `count` (jobs finished so far), `prevTS` (ms
  of the job that began the minute now counting) and `prevCount` (`count` before that minute), and
  the list `metrics:<type>:data` one point a minute, newest first: element i holds the jobs finished
  in minute floor(prevTS / 60000) - 1 - i. Only the elements of the part are read (Node's getMetrics
  reads LRANGE start..end the same way), each checked for length.

  Bounds: a data list is read with LRANGE only when the whole list takes at most ARGV[3] bytes
  (MEMORY USAGE … SAMPLES 0 walks its nodes, not its elements; BullMQ's own list of a week of points
  takes about 20-100 KB), else not at all ("too large": one element of a list someone else wrote may
  hold megabytes, and LRANGE or LINDEX copies it whole before its length is known). When MEMORY is
  refused (an ACL without +memory, a managed Redis), elements are read one at a time until ARGV[5]
  bytes are copied or an element is longer than ARGV[4]: what is copied is then at most that budget
  plus one element. queues.throughput splits a window into parts of at most 360 minutes, one call
  each, so that no call copies more than 360 points of a list.

  Live: every finished job went into the metrics (includes/metrics_live.lua).

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
    ARGV[1]  first minute of the part (ms since the epoch, a multiple of 60000)
    ARGV[2]  last minute of the part (ms, included)
    ARGV[3]  bytes a data list may take in memory to be read
    ARGV[4]  longest element kept (bytes); longer ones are returned as false
    ARGV[5]  bytes copied one element at a time when MEMORY is refused

  Returns {
    { count, prevTS, prevCount, first index, list length, { elements }, elements of the part not read }
      or false, for completed,
    the same for failed,
    live (1 or 0),
    { key, problem, ... }   keys that are not of the type expected, or too large to read
  }
  A field of a metrics hash over 32 bytes reads as false.
]]
local rcall = redis.call
local p = KEYS[1]
local firstMinute = tonumber(ARGV[1])
local lastMinute = tonumber(ARGV[2])
local cap = tonumber(ARGV[3])
local maxEach = tonumber(ARGV[4])
local budget = tonumber(ARGV[5])
local MINUTE = 60000

-- @include bounded_copy
-- @include metrics_live

local problems = {}

local function expect(key, wanted)
  local kind = rcall("TYPE", key)["ok"]
  if kind == "none" then
    return false
  end
  if kind ~= wanted then
    problems[#problems + 1] = key
    problems[#problems + 1] = kind
    return false
  end
  return true
end

local function shortField(key, field)
  if rcall("HSTRLEN", key, field) > 32 then
    return false
  end
  return rcall("HGET", key, field) or false
end

-- Elements first..last (all within the list) of a list, each longer than maxEach replaced by false,
-- and how many of them were not read.
local function listRange(key, first, last)
  local items = {}
  local bytes = keyBytes(key)
  if bytes then
    if bytes > cap then
      problems[#problems + 1] = key
      problems[#problems + 1] = "too large"
      return items, last - first + 1
    end
    items = rcall("LRANGE", key, first, last)
  else
    local spent = 0
    for index = first, last do
      if spent >= budget then
        break
      end
      local item = rcall("LINDEX", key, index)
      if not item then
        break
      end
      items[#items + 1] = item
      spent = spent + #item
      if #item > maxEach then
        break
      end
    end
  end
  for i = 1, #items do
    if #items[i] > maxEach then
      items[i] = false
    end
  end
  return items, last - first + 1 - #items
end

local function minuteOf(ms)
  return ms - ms % MINUTE
end

local function metrics(kind)
  local key = p .. "metrics:" .. kind
  if not expect(key, "hash") then
    return false
  end
  local prevTS = shortField(key, "prevTS")
  local reply = { shortField(key, "count"), prevTS, shortField(key, "prevCount"), 0, 0, {}, 0 }
  local dataKey = key .. ":data"
  local stamp = tonumber(prevTS)
  if not stamp or not expect(dataKey, "list") then
    return reply
  end
  local length = rcall("LLEN", dataKey)
  local newest = minuteOf(stamp) - MINUTE -- the minute of element 0
  local first = math.max(0, (newest - lastMinute) / MINUTE)
  local last = math.min(length - 1, (newest - firstMinute) / MINUTE)
  reply[4] = first
  reply[5] = length
  if last >= first then
    reply[6], reply[7] = listRange(dataKey, first, last)
  end
  return reply
end

local completed = metrics("completed")
local failed = metrics("failed")
return { completed, failed, metricsLive(p), problems }
