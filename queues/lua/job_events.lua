--[[
  Read-only: the events of one job still held in its queue's events stream, newest first, searched in
  the newest `maxSearch` entries only (the stream may hold 10,000 or more).

  Entries are copied whole into this script (XREVRANGE cannot read part of one; BullMQ copies return
  values and failed reasons into them, so one entry can be 64 MB), so the stream is read only when the
  whole key fits the budget (MEMORY USAGE SAMPLES 0, includes/bounded_copy.lua); a larger stream is not
  read at all (reading it an entry at a time would still copy one entry of any size). What is returned
  is cut to `maxLen` bytes a value.

    KEYS[1]  the queue's events stream, `<prefix>:<name>:events`
    ARGV[1]  job id
    ARGV[2]  max entries searched, newest first
    ARGV[3]  max matching entries returned
    ARGV[4]  max bytes copied
    ARGV[5]  max bytes returned of each value

  Returns { streamLength, searched, oldestSearchedId, budgetSpent (0/1),
            { id, event, prev, detail, ... } } where detail is the failed reason of a `failed` event,
  the timestamp of a `delayed` one and the attempts of `retries-exhausted` ("" otherwise); `progress`
  events are not returned (a job may report progress thousands of times). A key that is not a stream
  reads as an empty one.
]]
local rcall = redis.call
local key = KEYS[1]
local jobId = ARGV[1]
local maxSearch = tonumber(ARGV[2])
local maxMatches = tonumber(ARGV[3])
local budget = tonumber(ARGV[4])
local maxLen = tonumber(ARGV[5])

-- @include bounded_copy

if rcall("TYPE", key)["ok"] ~= "stream" then
  return {0, 0, "", 0, {}}
end
local length = rcall("XLEN", key)

local function cut(value)
  if value and #value > maxLen then
    return string.sub(value, 1, maxLen)
  end
  return value or ""
end

local entries = {}
local budgetSpent = 0
if wholeKeyFits(key, budget) then
  entries = rcall("XREVRANGE", key, "+", "-", "COUNT", maxSearch)
else
  budgetSpent = 1
end

local matches = {}
local found = 0
for _, entry in ipairs(entries) do
  local fields = entry[2]
  local event, id, prev, detail = "", nil, "", ""
  for f = 1, #fields, 2 do
    local name = fields[f]
    if name == "jobId" then
      id = fields[f + 1]
    elseif name == "event" then
      event = fields[f + 1]
    elseif name == "prev" then
      prev = fields[f + 1]
    elseif name == "failedReason" or name == "delay" or name == "attemptsMade" then
      detail = fields[f + 1]
    end
  end
  if id == jobId and event ~= "progress" and found < maxMatches then
    found = found + 1
    matches[#matches + 1] = entry[1]
    matches[#matches + 1] = cut(event)
    matches[#matches + 1] = cut(prev)
    matches[#matches + 1] = cut(detail)
  end
end

local oldest = ""
if #entries > 0 then
  oldest = entries[#entries][1]
end
return {length, #entries, oldest, budgetSpent, matches}
