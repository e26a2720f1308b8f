--[[
  Read-only detail of one job in one round trip: its hash fields (values over the display limit cut
  here, with their full size), the job's state, its logs page, and its flow children. Every read is
  bounded, whatever the keys hold: at most `maxFields` fields, `maxLen` bytes of each value and log
  line, one page of logs, `maxChildren` children of each kind, `maxScan` list entries searched.

  Only a job is read: a key that is not a hash, or a hash without BullMQ's `timestamp` field (a job
  scheduler, a queue's meta, a flow's `:processed` hash, another program's data), is reported as not
  a job before any of its contents is read.

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
    ARGV[1]  job id
    ARGV[2]  max bytes returned of each field value and each log line
    ARGV[3]  logs start index
    ARGV[4]  logs end index (inclusive)
    ARGV[5]  max children listed of each kind
    ARGV[6]  max wait-list entries searched for the job's state
    ARGV[7]  max fields read when the hash has more (then only the known fields below are read)
    ARGV[8…] the fields the job page knows, read by name when the hash has too many fields

  Returns false when the key does not exist, { "not-a-job", reason } when it is not a job, else
  { state, { field, value, size, ... }, logCount, { lines... }, { depKey... }, { processedKey... },
    { failedKey... }, { depCount, processedCount, failedCount, ignoredCount }, hiddenFieldCount }
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
local jobKey = p .. jobId

-- @include job_state

local shape, keyType = jobShape(jobKey)
if shape == "none" then
  return false
end
if shape == "not-a-job" then
  if keyType == "hash" then
    return {"not-a-job", "a hash without BullMQ's timestamp field"}
  end
  return {"not-a-job", "a " .. keyType .. ", not a hash"}
end

local function cut(value)
  if #value > maxLen then
    return string.sub(value, 1, maxLen)
  end
  return value
end

local fieldCount = rcall("HLEN", jobKey)
local names
if fieldCount <= maxFields then
  names = rcall("HKEYS", jobKey)
else
  names = {}
  for i = 8, #ARGV do
    names[#names + 1] = ARGV[i]
  end
end
local fields = {}
for _, name in ipairs(names) do
  local size = rcall("HSTRLEN", jobKey, name)
  local value = rcall("HGET", jobKey, name)
  if value then
    fields[#fields + 1] = name
    fields[#fields + 1] = cut(value)
    fields[#fields + 1] = size
  end
end
local hidden = fieldCount - #fields / 3

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
if logCount > 0 and logEnd >= logStart then
  for i, line in ipairs(rcall("LRANGE", logKey, logStart, logEnd)) do
    lines[i] = cut(line)
  end
end

-- SSCAN/HSCAN with a bounded number of calls: a sparse table can answer a call with nothing.
local function firstMembers(key, kind)
  local out = {}
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
        return out
      end
      out[#out + 1] = reply[2][i]
    end
  until cursor == "0" or calls >= 10
  return out
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
if counts[1] > 0 then deps = firstMembers(depsKey, "set") end
if counts[2] > 0 then processed = firstMembers(processedKey, "hash") end
if counts[3] > 0 then failed = firstMembers(failedKey, "hash") end

return {state, fields, logCount, lines, deps, processed, failed, counts, hidden}
