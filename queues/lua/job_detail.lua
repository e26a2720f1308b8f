--[[
  Read-only detail of one job in one round trip: every hash field (values over the display limit
  cut here, with their full size), the job's state, its logs page, and its flow children.

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
    ARGV[1]  job id
    ARGV[2]  max bytes returned of each field value and each log line
    ARGV[3]  logs start index
    ARGV[4]  logs end index (inclusive)
    ARGV[5]  max children listed
    ARGV[6]  max wait-list entries searched for the job's state

  Returns { state, { field, value, size, ... }, logCount, { lines... }, { depKey... },
            { processedKey... }, { failedKey... }, { depCount, processedCount, failedCount, ignoredCount } }
  or false when the job hash does not exist.
]]
local rcall = redis.call
local p = KEYS[1]
local jobId = ARGV[1]
local maxLen = tonumber(ARGV[2])
local logStart = tonumber(ARGV[3])
local logEnd = tonumber(ARGV[4])
local maxChildren = tonumber(ARGV[5])
local maxScan = tonumber(ARGV[6])
local jobKey = p .. jobId

if rcall("EXISTS", jobKey) == 0 then
  return false
end

local function cut(value)
  if #value > maxLen then
    return string.sub(value, 1, maxLen)
  end
  return value
end

local fields = {}
for _, name in ipairs(rcall("HKEYS", jobKey)) do
  local size = rcall("HSTRLEN", jobKey, name)
  fields[#fields + 1] = name
  fields[#fields + 1] = cut(rcall("HGET", jobKey, name) or "")
  fields[#fields + 1] = size
end

-- The same order as BullMQ's getState-8.lua; list lookups are bounded so a page view stays cheap.
local state = "unknown"
if rcall("ZSCORE", p .. "completed", jobId) then
  state = "completed"
elseif rcall("ZSCORE", p .. "failed", jobId) then
  state = "failed"
elseif rcall("ZSCORE", p .. "delayed", jobId) then
  state = "delayed"
elseif rcall("ZSCORE", p .. "prioritized", jobId) then
  state = "prioritized"
elseif rcall("ZSCORE", p .. "waiting-children", jobId) then
  state = "waiting-children"
elseif rcall("LPOS", p .. "active", jobId, "MAXLEN", maxScan) then
  state = "active"
elseif rcall("LPOS", p .. "wait", jobId, "MAXLEN", maxScan) then
  state = "waiting"
elseif rcall("LPOS", p .. "paused", jobId, "MAXLEN", maxScan) then
  state = "waiting"
end

local logKey = jobKey .. ":logs"
local logCount = rcall("LLEN", logKey)
local lines = {}
if logCount > 0 and logEnd >= logStart then
  for i, line in ipairs(rcall("LRANGE", logKey, logStart, logEnd)) do
    lines[i] = cut(line)
  end
end

local function firstMembers(key, kind)
  local out = {}
  local cursor = "0"
  repeat
    local reply
    if kind == "set" then
      reply = rcall("SSCAN", key, cursor, "COUNT", maxChildren)
    else
      reply = rcall("HSCAN", key, cursor, "COUNT", maxChildren)
    end
    cursor = reply[1]
    local step = kind == "set" and 1 or 2
    for i = 1, #reply[2], step do
      if #out >= maxChildren then
        return out
      end
      out[#out + 1] = reply[2][i]
    end
  until cursor == "0"
  return out
end

local depsKey = jobKey .. ":dependencies"
local processedKey = jobKey .. ":processed"
local failedKey = jobKey .. ":failed"
local unsuccessfulKey = jobKey .. ":unsuccessful"
local counts = {
  rcall("SCARD", depsKey),
  rcall("HLEN", processedKey),
  rcall("HLEN", failedKey),
  rcall("ZCARD", unsuccessfulKey),
}
local deps, processed, failed = {}, {}, {}
if counts[1] > 0 then deps = firstMembers(depsKey, "set") end
if counts[2] > 0 then processed = firstMembers(processedKey, "hash") end
if counts[3] > 0 then failed = firstMembers(failedKey, "hash") end

return {state, fields, logCount, lines, deps, processed, failed, counts}
