--[[
  Read-only detail of one job in one round trip: its hash fields (values over the display limit cut
  here, with their full size), the job's state, its logs page, and its flow children.

  Every read is bounded, whatever the keys hold. Redis cannot read part of a value, so what is copied
  into this script is bounded before it is read: a field value longer than `maxCopy` is not read at
  all (only its size, from HSTRLEN), and all values, log lines and child keys together copy at most
  `budget` bytes (log lines and child keys are measured with MEMORY USAGE, an estimate from a few
  samples). At most `maxFields` fields are read, one page of logs, `maxChildren` children of each
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
-- HKEYS copies every field name: only for a hash with few fields and a small total size (an
-- estimate, as above), else the known fields alone are read and the rest counted as hidden.
local hashBytes = 0
local sized, usage = pcall(rcall, "MEMORY", "USAGE", jobKey, "SAMPLES", 5)
if sized and usage then
  hashBytes = usage
end
if fieldCount <= maxFields and hashBytes <= budget then
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

-- Bytes per element of a list, set or hash, estimated by MEMORY USAGE from a few samples.
local function perElement(key, count)
  local ok, bytes = pcall(rcall, "MEMORY", "USAGE", key, "SAMPLES", 5)
  if not ok or not bytes or count == 0 then
    return 0
  end
  return math.ceil(bytes / count)
end

local logKey = jobKey .. ":logs"
local logCount = sizeOf("LLEN", logKey)
local lines = {}
local linesNotRead = 0
if logCount > 0 and logEnd >= logStart then
  local wanted = math.min(logEnd, logCount - 1) - logStart + 1
  local each = perElement(logKey, logCount)
  local affordable = wanted
  if each > 0 then
    affordable = math.min(wanted, math.floor(budget / each))
  end
  if each > maxCopy then
    affordable = 0
  end
  linesNotRead = math.max(0, wanted - affordable)
  if affordable > 0 then
    budget = budget - affordable * each
    for i, line in ipairs(rcall("LRANGE", logKey, logStart, logStart + affordable - 1)) do
      lines[i] = cut(line)
    end
  end
end

-- SSCAN/HSCAN with a bounded number of calls (a sparse table can answer a call with nothing), and
-- only when the members are small enough to copy (a child key is as long as the child's id).
local function firstMembers(key, kind, count)
  local out = {}
  local each = perElement(key, count)
  if each * math.min(count, maxChildren) > budget or each > maxCopy then
    return out, count
  end
  budget = budget - each * math.min(count, maxChildren)
  local cursor = "0"
  local calls = 0
  repeat
    local reply
    if kind == "set" then
      reply = rcall("SSCAN", key, cursor, "COUNT", maxChildren)
    else
      reply = rcall("HSCAN", key, cursor, "COUNT", maxChildren)
    end
    cursor = reply[1]
    calls = calls + 1
    local step = kind == "set" and 1 or 2
    for i = 1, #reply[2], step do
      if #out >= maxChildren then
        return out, 0
      end
      out[#out + 1] = cut(reply[2][i])
    end
  until cursor == "0" or calls >= 10
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
local deps, processed, failed = {}, {}, {}
local notListed, skipped = 0, 0
if counts[1] > 0 then deps, skipped = firstMembers(depsKey, "set", counts[1]); notListed = notListed + skipped end
if counts[2] > 0 then processed, skipped = firstMembers(processedKey, "hash", counts[2]); notListed = notListed + skipped end
if counts[3] > 0 then failed, skipped = firstMembers(failedKey, "hash", counts[3]); notListed = notListed + skipped end

return {state, fields, logCount, lines, deps, processed, failed, counts, hidden, unread, linesNotRead, notListed}
