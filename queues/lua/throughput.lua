--[[
  Read-only: what one queue finished per minute over a window of whole minutes, from BullMQ's metrics
  keys and from the dashboard's own samples (queues/sampling.py), for queues.throughput to choose from.

  BullMQ's metrics, written in moveToFinished by workers that run with `metrics: {maxDataPoints}`
  (collectMetrics.lua): the hash `metrics:<type>` holds `count` (jobs finished so far), `prevTS` (ms
  of the job that began the minute now counting) and `prevCount` (`count` before that minute), and
  the list `metrics:<type>:data` one point a minute, newest first: element i holds the jobs finished
  in minute floor(prevTS / 60000) - 1 - i. Only the elements of the window are read (Node's
  getMetrics reads LRANGE start..end the same way), each checked for length: a list someone else
  wrote may hold megabytes in one element (see includes/bounded_copy.lua).

  Live: every finished job went into the metrics (includes/metrics_live.lua); the samples are read
  when the metrics are not live.

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
    KEYS[2]  the dashboard's sample key of the queue, `<key prefix>:samples:<prefix>:<name>`
    ARGV[1]  first minute of the window (ms since the epoch, a multiple of 60000)
    ARGV[2]  last minute of the window (ms, included)
    ARGV[3]  bytes one list or zset read may copy
    ARGV[4]  longest element kept (bytes); longer ones are returned as false
    ARGV[5]  "1": read the samples even when the metrics are live

  Returns {
    { count, prevTS, prevCount, first index, list length, { elements } } or false, for completed,
    the same for failed,
    live (1 or 0),
    { sample entries in the window } or false (not read), the minute (ms) of the oldest sample or false,
    { key, problem, ... }   keys that are not of the type expected, or too large to read
  }
  A field of a metrics hash over 32 bytes reads as false.
]]
local rcall = redis.call
local p = KEYS[1]
local sampleKey = KEYS[2]
local firstMinute = tonumber(ARGV[1])
local lastMinute = tonumber(ARGV[2])
local budget = tonumber(ARGV[3])
local maxEach = tonumber(ARGV[4])
local alwaysSamples = ARGV[5] == "1"
local MINUTE = 60000
-- LINDEX one element at a time (a list too large to read at once) at most this many times.
local MAX_STEPS = 1000

-- @include bounded_copy
-- @include metrics_live

local problems = {}

local function typeOf(key)
  return rcall("TYPE", key)["ok"]
end

local function expect(key, wanted)
  local kind = typeOf(key)
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

-- Elements first..last of a list, each longer than maxEach replaced by false.
local function listRange(key, first, last)
  local items = {}
  if wholeKeyFits(key, budget) then
    items = rcall("LRANGE", key, first, last)
  else
    local spent = 0
    for index = first, math.min(last, first + MAX_STEPS - 1) do
      local item = rcall("LINDEX", key, index)
      if not item then
        break
      end
      items[#items + 1] = item
      spent = spent + #item
      if spent >= budget then
        break
      end
    end
  end
  for i = 1, #items do
    if #items[i] > maxEach then
      items[i] = false
    end
  end
  return items
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
  local reply = { shortField(key, "count"), prevTS, shortField(key, "prevCount"), 0, 0, {} }
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
    reply[6] = listRange(dataKey, first, last)
  end
  return reply
end

local completed = metrics("completed")
local failed = metrics("failed")
local live = metricsLive(p)

local function ms(value)
  return string.format("%.0f", value)
end

-- An entry of the sampler's: every field and value short (the stream is the dashboard's, but anyone
-- can write to a key).
local function shortEntry(entry)
  if #entry[1] > maxEach then
    return false
  end
  for _, value in ipairs(entry[2]) do
    if #value > maxEach then
      return false
    end
  end
  return true
end

local samples, sampledSince = false, false
if (live == 0 or alwaysSamples) and expect(sampleKey, "stream") then
  if wholeKeyFits(sampleKey, budget) then
    samples = {}
    local entries = rcall("XRANGE", sampleKey, ms(firstMinute), ms(lastMinute + MINUTE - 1),
      "COUNT", (lastMinute - firstMinute) / MINUTE + 1)
    for _, entry in ipairs(entries) do
      if shortEntry(entry) then
        samples[#samples + 1] = entry
      end
    end
    local oldest = rcall("XRANGE", sampleKey, "-", "+", "COUNT", 1)[1]
    sampledSince = oldest and string.match(oldest[1], "^(%d+)") or false
  else
    problems[#problems + 1] = sampleKey
    problems[#problems + 1] = "too large"
  end
end

return { completed, failed, live, samples, sampledSince, problems }
