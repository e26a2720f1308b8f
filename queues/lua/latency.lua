--[[
  Read-only: how long one queue's jobs wait and run. When the job next in line started waiting
  (includes/oldest_waiting.lua), and the times of the newest completed jobs: `timestamp`, `delay`,
  `processedOn` and `finishedOn` of each, for percentiles of processing time (finishedOn -
  processedOn) and of wait time (processedOn - timestamp - delay).

  ARGV[1] members of the completed set from the ARGV[3]th newest (by finishedOn) are read whole when
  the set fits ARGV[2] bytes, else one at a time until those bytes are spent (job ids are chosen by job
  authors). A job whose hash is gone, is not a hash, or has one of the four fields over 32 bytes is
  skipped. queues.latency reads many jobs in several calls of at most 500 jobs each (a call holds
  Redis while it runs), only the first of them (ARGV[4] = "1") reading the job next in line.

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
    ARGV[1]  completed jobs read at most
    ARGV[2]  bytes of their ids copied at most
    ARGV[3]  how many of the newest completed jobs to pass over (0: from the newest)
    ARGV[4]  "1": also read when the job next in line started waiting

  Returns { oldest waiting since (ms) or false, jobs read, { timestamp, delay, processedOn,
            finishedOn, ... } (false for a missing field), problem (the completed key's type) or false }
]]
local rcall = redis.call
local p = KEYS[1]
local wanted = tonumber(ARGV[1])
local budget = tonumber(ARGV[2])
local offset = tonumber(ARGV[3]) or 0
local withOldest = ARGV[4] ~= "0"
local MAX_ID = 1024
local FIELDS = { "timestamp", "delay", "processedOn", "finishedOn" }

-- @include bounded_copy
-- @include list_count
-- @include oldest_waiting

local oldest = false
if withOldest then
  local version = nil
  local okMeta, metaVersion = pcall(rcall, "HGET", p .. "meta", "version")
  if okMeta and metaVersion and #metaVersion <= 64 then
    version = metaVersion
  end
  oldest = oldestWaitingSince(p, isLegacyQueue(p, version))
end

local completedKey = p .. "completed"
local kind = rcall("TYPE", completedKey)["ok"]
if kind ~= "zset" then
  return { oldest, 0, {}, kind ~= "none" and kind or false }
end

local ids = {}
if wanted > 0 and wholeKeyFits(completedKey, budget) then
  ids = rcall("ZREVRANGE", completedKey, offset, offset + wanted - 1)
else
  local spent = 0
  for index = offset, offset + wanted - 1 do
    if spent >= budget then
      break
    end
    local one = rcall("ZREVRANGE", completedKey, index, index)
    if #one == 0 then
      break
    end
    spent = spent + #one[1]
    ids[#ids + 1] = one[1]
  end
end

local function jobTimes(key)
  local ok, sizes = pcall(function()
    local out = {}
    for i, name in ipairs(FIELDS) do
      out[i] = rcall("HSTRLEN", key, name)
    end
    return out
  end)
  if not ok then
    return nil
  end
  for _, size in ipairs(sizes) do
    if size > 32 then
      return nil
    end
  end
  return rcall("HMGET", key, unpack(FIELDS))
end

local times = {}
for _, id in ipairs(ids) do
  if #id <= MAX_ID then
    local fields = jobTimes(p .. id)
    if fields then
      for i = 1, #FIELDS do
        times[#times + 1] = fields[i] or false
      end
    end
  end
end
return { oldest, #ids, times, false }
