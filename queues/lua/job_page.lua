--[[
  Read-only page of one state's jobs, newest first, in the order Node BullMQ's
  queue.getJobs(state, start, end, false) returns: ids whose hash is gone are skipped and the page is
  back-filled from later ids, as BullMQ's getJobs-1.lua does. Only summary fields are returned, and
  long ones are cut here so a multi-megabyte failedReason never crosses the wire.

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
    ARGV[1]  state key suffix (wait, active, delayed, ...)
    ARGV[2]  "1" when that key is a list, "0" for a zset
    ARGV[3]  start index
    ARGV[4]  end index (inclusive)
    ARGV[5]  max bytes kept of each text field
    ARGV[6]  max back-fill iterations

  Returns { total, { id, { field values in SUMMARY order }, optsAttempts }, ... }; a row whose key is
  not a hash is { id, false, false, its type }. When the state's own key is of the wrong type the
  reply is { false, its type }.
]]
local rcall = redis.call
local p = KEYS[1]
local stateKey = p .. ARGV[1]
local isList = ARGV[2] == "1"
local rangeStart = tonumber(ARGV[3])
local rangeEnd = tonumber(ARGV[4])
local maxLen = tonumber(ARGV[5])
local maxIterations = tonumber(ARGV[6])

local SUMMARY = {"name", "timestamp", "processedOn", "finishedOn", "atm", "attemptsMade",
                 "progress", "delay", "priority", "failedReason"}

-- @include list_count
-- @include job_state

local countOk, total
if isList then
  local metaOk, version = pcall(rcall, "HGET", p .. "meta", "version")
  countOk, total = pcall(listCount, stateKey, isLegacyQueue(p, metaOk and version or nil))
else
  countOk, total = pcall(rcall, "ZCARD", stateKey)
end
if not countOk then
  -- The state's key is not a list or zset (another program wrote it): say what it is instead.
  return {false, rcall("TYPE", stateKey)["ok"]}
end

local function cut(value)
  if value and #value > maxLen then
    return string.sub(value, 1, maxLen)
  end
  return value
end

local function attemptsOf(opts)
  -- opts is written by other programs: survive invalid JSON.
  if not opts then
    return false
  end
  local ok, decoded = pcall(cjson.decode, opts)
  if ok and type(decoded) == "table" and type(decoded["attempts"]) == "number" then
    return decoded["attempts"]
  end
  return false
end

-- Fields that can be long are measured first and cut here; opts is read only when small enough to
-- decode. The rest are small numbers. Five commands per job: four HSTRLEN and one HMGET.
local LONG = {name = true, progress = true, failedReason = true}
local MAX_OPTS = 65536
-- Redis cannot read part of a value: a long field is copied here only up to this size, a longer one
-- is not read at all (a page of 100 rows copies at most 100 x 3 x 64 KB).
local MAX_COPY = 65536
-- Ids longer than this are cut in the reply (the row cannot be opened then; new ids are limited to 1 KB).
local MAX_ID = 1024

local function summary(id)
  local jobKey = p .. id
  if string.find(id, ":", 1, true) and nestedQueueOwns(p, id) then
    return {string.sub(id, 1, MAX_ID), false, false, "nested-queue"}
  end
  -- Another program may have put an id whose key is not a hash (a list, a string) in the state's list:
  -- that row says so, and the rest of the page is read as usual.
  local firstLength = redis.pcall("HSTRLEN", jobKey, SUMMARY[1])
  if type(firstLength) ~= "number" then
    return {string.sub(id, 1, MAX_ID), false, false, rcall("TYPE", jobKey)["ok"]}
  end
  local wanted = {}
  local cutNames = {}
  for i, name in ipairs(SUMMARY) do
    local length = i == 1 and firstLength or (LONG[name] and rcall("HSTRLEN", jobKey, name))
    if LONG[name] and length > maxLen then
      cutNames[name] = length
      wanted[#wanted + 1] = "\0absent"
    else
      wanted[#wanted + 1] = name
    end
  end
  wanted[#wanted + 1] = rcall("HSTRLEN", jobKey, "opts") > MAX_OPTS and "\0absent" or "opts"
  local values = rcall("HMGET", jobKey, unpack(wanted))
  local opts = table.remove(values)
  local empty = not opts
  for i, name in ipairs(SUMMARY) do
    if cutNames[name] then
      if cutNames[name] > MAX_COPY then
        values[i] = "[not read: " .. cutNames[name] .. " bytes]"
      else
        values[i] = cut(rcall("HGET", jobKey, name))
      end
      empty = false
    elseif not values[i] then
      values[i] = false
    else
      empty = false
    end
  end
  -- Every field missing: either the hash is gone (skipped, as Node's getJobs skips it) or it holds
  -- none of these fields (listed, as Node lists it). Only then is EXISTS worth a command.
  if empty and rcall("EXISTS", jobKey) == 0 then
    return nil
  end
  if #id > MAX_ID then
    return {string.sub(id, 1, MAX_ID), values, attemptsOf(opts), "long-id"}
  end
  return {id, values, attemptsOf(opts)}
end

local function fetchIds(sliceStart, sliceEnd)
  if isList then
    return rcall("LRANGE", stateKey, sliceStart, sliceEnd)
  end
  return rcall("ZREVRANGE", stateKey, sliceStart, sliceEnd)
end

local result = {total}
local needed = rangeEnd - rangeStart + 1
local found = 0
local cursor = rangeStart
local iterations = 0
while found < needed and iterations < maxIterations do
  local ids = fetchIds(cursor, cursor + needed - 1)
  if #ids == 0 then
    break
  end
  for i = 1, #ids do
    if found >= needed then
      break
    end
    local row = summary(ids[i])
    if row then
      result[#result + 1] = row
      found = found + 1
    end
  end
  cursor = cursor + #ids
  iterations = iterations + 1
end
return result
