--[[
  Read-only: the dashboard's own samples of one queue (queues/sampling.py) over a part of a window,
  summed into the window's buckets, for queues.throughput. Its own script, called in the same pipeline
  as throughput.lua: a Redis user that may not read the dashboard's keys (an ACL without
  `%R~<KEY_PREFIX>:*`) has this call refused, and only the sampled part of the chart is lost.

  An entry is one minute: id `<minute ms>-0`, fields `c` (completed), `f` (failed), `b` (flags: 1 and
  2 mark a lower bound). An entry of another shape (the key is the dashboard's, but anyone who may
  write to Redis can write to it) is left out: an id that is not a whole minute, a missing field, a
  value that is not ARGV[5] digits or fewer.

  Bounds: the part's entries are read in one XRANGE only when the whole stream takes at most ARGV[4]
  bytes (MEMORY USAGE … SAMPLES 0; a week of samples takes about 270 KB), else not at all ("too
  large"). When MEMORY is refused, one entry at a time until ARGV[6] bytes are copied, an entry holds
  a value longer than ARGV[5], or as many entries as the part has minutes are read: at most that budget
  plus one entry. The minutes not read are
  reported ("first minute not read"), never shown as minutes nobody counted. A part is at most 360
  minutes (queues.throughput), so that no call converts more than 360 entries into Lua (what a week
  of entries in one call took is in docs/security.md).

    KEYS[1]  the sample key, `<key prefix>:samples:<prefix>:<name>`
    ARGV[1]  first minute of the part (ms, the start of a bucket)
    ARGV[2]  last minute of the part (ms, included)
    ARGV[3]  minutes per bucket
    ARGV[4]  bytes the stream may take in memory to be read
    ARGV[5]  most digits of a value
    ARGV[6]  bytes copied one entry at a time when MEMORY is refused
    ARGV[7]  "1": also return the minute of the oldest sample

  Returns { problem (the key's type when it is no stream, or "too large") or false,
            the oldest sample's minute (ms) or false,
            the first minute not read (ms) or false,
            then per bucket of the part: completed, failed, minutes counted, lower bound (1 or 0) }
]]
local rcall = redis.call
local key = KEYS[1]
local firstMinute = tonumber(ARGV[1])
local lastMinute = tonumber(ARGV[2])
local bucketMinutes = tonumber(ARGV[3])
local cap = tonumber(ARGV[4])
local maxDigits = tonumber(ARGV[5])
local budget = tonumber(ARGV[6])
local wantOldest = ARGV[7] == "1"
local MINUTE = 60000
local BUCKET = bucketMinutes * MINUTE

-- @include bounded_copy

local function ms(value)
  return string.format("%.0f", value)
end

local buckets = math.floor((lastMinute - firstMinute) / BUCKET) + 1
local completed, failed, counted, bound = {}, {}, {}, {}
for i = 1, buckets do
  completed[i], failed[i], counted[i], bound[i] = 0, 0, 0, 0
end

local function reply(problem, oldest, unreadFrom)
  local out = { problem or false, oldest or false, unreadFrom or false }
  for i = 1, buckets do
    out[#out + 1] = ms(completed[i])
    out[#out + 1] = ms(failed[i])
    out[#out + 1] = counted[i]
    out[#out + 1] = bound[i]
  end
  return out
end

local function number(value)
  if #value > maxDigits or not string.match(value, "^%d+$") then
    return nil
  end
  return tonumber(value)
end

-- Adds one entry to its bucket (when it is a sample of the part); false when a field or value in it
-- is too long to be the sampler's.
local function tally(entry)
  local minute = tonumber(string.match(entry[1], "^(%d+)%-0$"))
  local values = {}
  local fields = entry[2]
  for i = 1, #fields - 1, 2 do
    if #fields[i] > maxDigits or #fields[i + 1] > maxDigits then
      return false
    end
    values[fields[i]] = number(fields[i + 1])
  end
  local c, f, b = values["c"], values["f"], values["b"]
  if not minute or minute % MINUTE ~= 0 or minute < firstMinute or minute > lastMinute
    or not c or not f or not b then
    return true
  end
  local slot = math.floor((minute - firstMinute) / BUCKET) + 1
  completed[slot] = completed[slot] + c
  failed[slot] = failed[slot] + f
  counted[slot] = counted[slot] + 1
  if b % 4 ~= 0 then
    bound[slot] = 1
  end
  return true
end

local kind = rcall("TYPE", key)["ok"]
if kind == "none" then
  return reply()
end
if kind ~= "stream" then
  return reply(kind)
end

local bytes = keyBytes(key)
if bytes and bytes > cap then
  return reply("too large")
end

local fromId, toId = ms(firstMinute), ms(lastMinute + MINUTE - 1)
local count = (lastMinute - firstMinute) / MINUTE + 1
local unreadFrom = false
if bytes then
  local entries = rcall("XRANGE", key, fromId, toId, "COUNT", count)
  for _, entry in ipairs(entries) do
    tally(entry)
  end
  -- More entries than minutes (ids that are no whole minutes, written by someone else): the rest of
  -- the part is not read.
  local lastId = #entries >= count and tonumber(string.match(entries[#entries][1], "^(%d+)"))
  if lastId and lastId - lastId % MINUTE < lastMinute then
    unreadFrom = lastId - lastId % MINUTE + MINUTE
  end
else
  local spent, start, next, steps = 0, fromId, firstMinute, 0
  while true do
    if spent >= budget or steps >= count then
      if next <= lastMinute then
        unreadFrom = next
      end
      break
    end
    local one = rcall("XRANGE", key, start, toId, "COUNT", 1)[1]
    if not one then
      break
    end
    spent = spent + entryBytes(one)
    steps = steps + 1
    local stamp = tonumber(string.match(one[1], "^(%d+)")) or lastMinute
    next = stamp - stamp % MINUTE + MINUTE
    if not tally(one) then
      if next <= lastMinute then
        unreadFrom = next
      end
      break
    end
    start = "(" .. one[1]
  end
end

local oldest = false
if wantOldest then
  local first = rcall("XRANGE", key, "-", "+", "COUNT", 1)[1]
  local stamp = first and tonumber(string.match(first[1], "^(%d+)"))
  if stamp then
    oldest = ms(stamp - stamp % MINUTE)
  end
end
return reply(false, oldest, unreadFrom)
