--[[
  Read-only detail of one job in one round trip: its hash fields (values over the display limit cut
  here, with their full size), the job's state, its logs page, and its flow children.

  Every read is bounded, whatever the keys hold. Redis cannot read part of a value, so what is copied
  into this script is bounded before it is read: a field value longer than `maxCopy` is not read at
  all (only its size, from HSTRLEN), and all values, log lines and child keys together copy at most
  `budget` bytes, plus one log line and one small batch of child keys (Redis cannot measure a list
  element or set member before copying it; see includes/bounded_copy.lua). At most `maxFields` fields are read, one page of logs, `maxChildren` children of each
  kind, `maxScan` list entries searched for the state; what comes back is cut to `maxLen` bytes.

  Only a job of this queue is read (see includes/job_state.lua): a key that is not a hash, a hash
  without BullMQ's `timestamp` field or a job of a nested queue is reported as not a job before any of
  its contents is read.

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
    ARGV[1]  job id
    ARGV[2]  max bytes returned of each field value, log line and child key
    ARGV[3]  logs start index
    ARGV[4]  logs end index (inclusive)
    ARGV[5]  max children listed of each kind
    ARGV[6]  max wait-list entries searched for the job's state
    ARGV[7]  max fields read when the hash has more (then only the known fields below are read)
    ARGV[8]  max bytes of one value copied into this script
    ARGV[9]  max bytes copied in all
    ARGV[10…] the fields the job page knows, read first (and only these when there are too many)

  Returns false when the key does not exist, { "not-a-job", key type } when it is not a job, else
  { state, { field, value, size, ... }, logCount, { lines... }, { depKey... }, { processedKey... },
    { failedKey... }, { depCount, processedCount, failedCount, ignoredCount }, hiddenFieldCount,
    { field, ... not read for their size }, logLinesNotRead, childrenNotListed }
]]
local rcall = redis.call
local p = KEYS[1]
local jobId = ARGV[1]
local maxLen = tonumber(ARGV[2])
local logStart = tonumber(ARGV[3])
local logEnd = tonumber(ARGV[4])
local maxChildren = tonumber(ARGV[5])
local maxScan = tonumber(ARGV[6])
local maxFields = tonumber(ARGV[7])
local maxCopy = tonumber(ARGV[8])
local budget = tonumber(ARGV[9])
local jobKey = p .. jobId

-- @include job_state
-- @include bounded_copy

local shape, keyType = jobShape(p, jobId)
if shape == "none" then
  return false
end
if shape == "not-a-job" then
  return {"not-a-job", keyType}
end

local function cut(value)
  if #value > maxLen then
    return string.sub(value, 1, maxLen)
  end
  return value
end

-- Known fields first, so that the budget goes to what the page shows in its own places.
local known, names, listed = {}, {}, {}
for i = 10, #ARGV do
  known[#known + 1] = ARGV[i]
end
local fieldCount = rcall("HLEN", jobKey)
for _, name in ipairs(known) do
  names[#names + 1] = name
  listed[name] = true
end
-- HKEYS copies every field name: only for a hash with few fields whose names fit the budget (its
-- whole size, measured field by field: at most maxFields of them), else the known fields alone are
-- read and the rest counted as hidden.
local measured = keyBytes(jobKey)
if fieldCount <= maxFields and (measured and measured <= budget or not measured and compactHash(jobKey)) then
  for _, name in ipairs(rcall("HKEYS", jobKey)) do
    if not listed[name] then
      names[#names + 1] = name
    end
  end
end

local fields, unread = {}, {}
local present = 0
for _, name in ipairs(names) do
  local size = rcall("HSTRLEN", jobKey, name)
  if size > 0 or rcall("HEXISTS", jobKey, name) == 1 then
    present = present + 1
    fields[#fields + 1] = cut(name)
    if size > maxCopy or size > budget then
      fields[#fields + 1] = ""
      unread[#unread + 1] = cut(name)
    else
      budget = budget - size
      fields[#fields + 1] = cut(rcall("HGET", jobKey, name))
    end
    fields[#fields + 1] = size
  end
end
local hidden = fieldCount - present

local state = jobState(p, jobId, maxScan)

local function sizeOf(command, key)
  local n = redis.pcall(command, key)
  if type(n) == "number" then
    return n
  end
  return 0
end


local logKey = jobKey .. ":logs"
local logCount = sizeOf("LLEN", logKey)
local lines = {}
local linesNotRead = 0
if logCount > 0 and logEnd >= logStart then
  local wanted = math.min(logEnd, logCount - 1) - logStart + 1
  local read, spent = boundedListRange(logKey, logCount, logStart, logStart + wanted - 1, budget, maxCopy)
  budget = budget - spent
  linesNotRead = wanted - #read
  for i, line in ipairs(read) do
    lines[i] = cut(line)
  end
end

-- The first maxChildren members of a children key within the budget (includes/bounded_copy.lua), each
-- cut for display; returns them and how many of the first maxChildren were not listed.
local function firstMembers(key, kind, count)
  local wanted = math.min(count, maxChildren)
  local listed
  listed, budget = boundedMembers(key, kind, count, maxChildren, budget)
  local out = {}
  for i, member in ipairs(listed) do
    out[i] = cut(member)
  end
  if budget <= 0 then
    return out, math.max(0, wanted - #out)
  end
  return out, 0
end

local depsKey = jobKey .. ":dependencies"
local processedKey = jobKey .. ":processed"
local failedKey = jobKey .. ":failed"
local unsuccessfulKey = jobKey .. ":unsuccessful"
local counts = {
  sizeOf("SCARD", depsKey),
  sizeOf("HLEN", processedKey),
  sizeOf("HLEN", failedKey),
  sizeOf("ZCARD", unsuccessfulKey),
}
-- BullMQ's names (job.getDependenciesCount): `:failed` holds the failures of children the parent
-- ignored (ignoreDependencyOnFailure), `:unsuccessful` the children that failed it (failParentOnFailure).
local deps, processed, ignored, unsuccessful = {}, {}, {}, {}
local notListed, skipped = 0, 0
if counts[1] > 0 then deps, skipped = firstMembers(depsKey, "set", counts[1]); notListed = notListed + skipped end
if counts[2] > 0 then processed, skipped = firstMembers(processedKey, "hash", counts[2]); notListed = notListed + skipped end
if counts[3] > 0 then ignored, skipped = firstMembers(failedKey, "hash", counts[3]); notListed = notListed + skipped end
if counts[4] > 0 then unsuccessful, skipped = firstMembers(unsuccessfulKey, "zset", counts[4]); notListed = notListed + skipped end

return {state, fields, logCount, lines, deps, processed, ignored, counts, hidden, unread, linesNotRead, notListed,
        unsuccessful}
