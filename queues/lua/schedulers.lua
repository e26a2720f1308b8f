--[[
  Read-only: one page of a queue's job schedulers (and legacy repeatables), soonest next run first.

  The `<q>:repeat` zset holds scheduler id -> next run (ms); a scheduler's settings are the hash
  `<q>:repeat:<id>` (BullMQ >= 5.16; legacy repeatables of older versions have no hash, their member
  is `name:jobId:endDate:tz:pattern-or-every`). Members are read one at a time within a byte budget;
  a field longer than its limit is not read (its length is). The newest job of a scheduler is
  `repeat:<id>:<next ms>` (BullMQ adds the next run as soon as the current one starts); for an
  `every` scheduler whose next job is gone the slot before it is tried.

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
    ARGV[1]  first index (0-based)
    ARGV[2]  rows wanted
    ARGV[3]  max bytes of a short field (name, pattern, tz, numbers)
    ARGV[4]  max bytes of the template fields (data, opts)
    ARGV[5]  max bytes of scheduler ids together
    ARGV[6]  max list entries scanned for a job's state
    ARGV[7..] the hash fields to read, then "data", "opts" last

  Returns { total, { id, next, hash type, latest job id, latest job state,
                      value1, size1, value2, size2, ... }, ... }
  or { false, type } when `<q>:repeat` is not a sorted set; an "over-budget" row ends a page past the
  budget; an id over the short field limit is sent cut, with the hash type "long-id" (nothing else read).
]]
local rcall = redis.call
-- @include job_state

local p = KEYS[1]
local first = tonumber(ARGV[1])
local wanted = tonumber(ARGV[2])
local maxField = tonumber(ARGV[3])
local maxTemplate = tonumber(ARGV[4])
local budget = tonumber(ARGV[5])
local maxScan = tonumber(ARGV[6])
local fields = {}
for index = 7, #ARGV do
  fields[#fields + 1] = ARGV[index]
end

local repeatKey = p .. "repeat"
local repeatType = rcall("TYPE", repeatKey)["ok"]
if repeatType ~= "zset" and repeatType ~= "none" then
  return {false, repeatType}
end
local total = rcall("ZCARD", repeatKey)

local function latestJob(schedulerId, nextMillis, every)
  local candidates = {"repeat:" .. schedulerId .. ":" .. nextMillis}
  local step = tonumber(every or "")
  local at = tonumber(nextMillis)
  if step and step > 0 and at then
    candidates[2] = "repeat:" .. schedulerId .. ":" .. string.format("%.0f", at - step)
  end
  for _, jobId in ipairs(candidates) do
    if jobShape(p, jobId) == "job" then
      return jobId, jobState(p, jobId, maxScan)
    end
  end
  return false, false
end

local rows = {}
local spent = 0
for index = first, math.min(first + wanted, total) - 1 do
  if spent >= budget then
    rows[#rows + 1] = {"over-budget"}
    break
  end
  local member = rcall("ZRANGE", repeatKey, index, index, "WITHSCORES")
  if #member == 0 then
    break
  end
  local schedulerId, nextMillis = member[1], member[2]
  spent = spent + #schedulerId
  local hashKey = repeatKey .. ":" .. schedulerId
  local hashType = "long-id"
  if #schedulerId > maxField then
    schedulerId = string.sub(schedulerId, 1, maxField)
  else
    hashType = rcall("TYPE", hashKey)["ok"]
  end
  local row = {schedulerId, nextMillis, hashType, false, false}
  local every = false
  if hashType == "hash" then
    for _, field in ipairs(fields) do
      local limit = maxField
      if field == "data" or field == "opts" then
        limit = maxTemplate
      end
      local size = rcall("HSTRLEN", hashKey, field)
      local value = false
      if size <= limit then
        value = rcall("HGET", hashKey, field) or false
      end
      if field == "every" then
        every = value
      end
      row[#row + 1] = value
      row[#row + 1] = size
    end
  end
  if hashType ~= "long-id" then
    row[4], row[5] = latestJob(schedulerId, nextMillis, every)
  end
  rows[#rows + 1] = row
end
return {total, rows}
