--[[
  Read-only: one bounded step of a job search in one state, newest first (the order of the queue page:
  a list from its head, a zset by descending score). Reads only name, data, failedReason, timestamp
  and finishedOn of each job, each measured first: a value over MAX_FIELD bytes is not read (Redis
  cannot read part of a value) and the job is counted as not fully searched. Matching is here, so
  only the matching jobs' summaries cross the wire: ASCII-case-insensitive substring (the haystack
  lowered with string.lower, the needles lowered by the caller, string.find plain).

  Where to start: the caller passes the position it reached and the last job it read there (id and,
  for a zset, its score). The step goes on right after that job wherever it is now (jobs added or
  removed before it shift positions); when that job has left the state it goes on at the jobs older
  than it (a zset: scores below its score, and equal scores after its id) or, for a list, at the same
  position (then a job can be read twice or missed; see queues/search.py).

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
    ARGV[1]  state key suffix (wait, active, completed, ...)
    ARGV[2]  "1" when that key is a list, "0" for a zset
    ARGV[3]  position to start at (0 = newest), the caller's last one
    ARGV[4]  id of the last job read ("" at the start of a state)
    ARGV[5]  its score (zsets; "" otherwise)
    ARGV[6]  max jobs read in this step
    ARGV[7]  max matches returned in this step
    ARGV[8]  max bytes of one value that is read (MAX_FIELD)
    ARGV[9]  max bytes copied in this step (ids and values)
    ARGV[10] exact job name wanted ("" for any); ARGV[11] "1" when a name is given
    ARGV[12] time field filtered ("timestamp", "finishedOn" or "")
    ARGV[13] since, ms (inclusive; "" for none); ARGV[14] until, ms (inclusive; "" for none)
    ARGV[15] "1" when the zset's score is the time field (completed / failed by finishedOn): the scan
             starts at `until` and stops below `since`
    ARGV[16] max bytes kept of each summary field sent
    ARGV[17..] needles, lowered (none: no text filter)

  Returns { "ok", next position, last id, last score, scanned, not searched, not jobs, state size,
  done (1 when the state has no more jobs to read), { rows } , copied }, each row
  { id, { SUMMARY values }, optsAttempts [, problem] } as job_page.lua's; or { false, type } when the
  state's key is not a list / zset.
]]
local rcall = redis.call
local p = KEYS[1]
local stateKey = p .. ARGV[1]
local isList = ARGV[2] == "1"
local position = tonumber(ARGV[3])
local lastId = ARGV[4]
local lastScore = ARGV[5]
local maxScan = tonumber(ARGV[6])
local maxMatches = tonumber(ARGV[7])
local MAX_FIELD = tonumber(ARGV[8])
local budget = tonumber(ARGV[9])
local wantedName = ARGV[10]
local byName = ARGV[11] == "1"
local timeField = ARGV[12]
local since = tonumber(ARGV[13])
local untilMs = tonumber(ARGV[14])
local scoreIsTime = ARGV[15] == "1"
local maxLen = tonumber(ARGV[16])
local needles = {}
for i = 17, #ARGV do
  needles[#needles + 1] = ARGV[i]
end

-- What is searched and filtered on; positions 1-3 are the text searched.
local SEARCHED = {"name", "data", "failedReason", "timestamp", "finishedOn"}
local FEW_FIELDS = 64
-- A summary field longer than this is not read for a matching job's row (as job_page.lua).
local SUMMARY_COPY = 65536
local MAX_ID = 1024
-- The last id is handed back to the caller (it goes into a URL) only when it is this short.
local MAX_CURSOR_ID = 200

-- @include job_state
-- @include bounded_copy
-- @include job_summary

local countOk, total
if isList then
  countOk, total = pcall(rcall, "LLEN", stateKey)
else
  countOk, total = pcall(rcall, "ZCARD", stateKey)
end
if not countOk then
  return {false, rcall("TYPE", stateKey)["ok"]}
end

-- Byte order, as Redis orders equal scores (Lua's `<` follows the locale's collation).
local function bytesLess(a, b)
  local n = math.min(#a, #b)
  for i = 1, n do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end

-- Where to start, and (zsets) equal-score ids to skip because they were read before `lastId`.
local start = position
local skipTiedAbove = nil
if lastId ~= "" then
  if isList then
    local at = position > 0 and rcall("LINDEX", stateKey, position - 1) or nil
    if at ~= lastId then
      local found = rcall("LPOS", stateKey, lastId, "MAXLEN", position + 10000)
      if found then
        start = found + 1
      end
    end
  else
    local score = rcall("ZSCORE", stateKey, lastId)
    if score and tonumber(score) == tonumber(lastScore) then
      start = rcall("ZREVRANK", stateKey, lastId) + 1
    else
      start = rcall("ZCOUNT", stateKey, "(" .. lastScore, "+inf")
      skipTiedAbove = lastId
    end
  end
end
if scoreIsTime and untilMs then
  start = math.max(start, rcall("ZCOUNT", stateKey, "(" .. ARGV[14], "+inf"))
end

local copied = 0

local function lower(value)
  if type(value) == "string" then
    return string.lower(value)
  end
  return nil
end

-- The searched fields of a job: their values (false when absent), and whether one was too long to read.
local function searchedFields(jobKey, fieldCount)
  if fieldCount <= FEW_FIELDS and wholeKeyFits(jobKey, MAX_FIELD) then
    local values = rcall("HMGET", jobKey, unpack(SEARCHED))
    for _, value in ipairs(values) do
      if value then
        copied = copied + #value
      end
    end
    return values, false
  end
  local wanted, tooBig = {}, false
  for i, name in ipairs(SEARCHED) do
    if rcall("HSTRLEN", jobKey, name) > MAX_FIELD then
      wanted[i] = "\0absent"
      tooBig = true
    else
      wanted[i] = name
    end
  end
  local values = rcall("HMGET", jobKey, unpack(wanted))
  for _, value in ipairs(values) do
    if value then
      copied = copied + #value
    end
  end
  return values, tooBig
end

local function inRange(value)
  local number = tonumber(value or "")
  if not number then
    return false
  end
  return (not since or number >= since) and (not untilMs or number <= untilMs)
end

local function textMatches(values)
  if #needles == 0 then
    return true
  end
  for i = 1, 3 do
    local hay = lower(values[i])
    if hay then
      for _, needle in ipairs(needles) do
        if string.find(hay, needle, 1, true) then
          return true
        end
      end
    end
  end
  return false
end

-- A matching job's summary row, each field measured first (the job's hash is read again: a match is
-- rare next to the jobs scanned, and the searched fields are not all the summary's).
local function summary(id, jobKey)
  local values, attempts, spent = readSummary(jobKey, math.huge, maxLen, SUMMARY_COPY, math.huge)
  copied = copied + spent
  if #id > MAX_ID then
    return {string.sub(id, 1, MAX_ID), values, attempts, "long-id"}
  end
  return {id, values, attempts}
end

local reads, scanned, notSearched, notJobs = 0, 0, 0, 0
local rows = {}
local done = 0
local index = start
local readId, readScore = lastId, lastScore

-- Examines one job; true when it matched (a row was added).
local function examine(id)
  local jobKey = p .. id
  local fieldCount = redis.pcall("HLEN", jobKey)
  if type(fieldCount) ~= "number" then
    notJobs = notJobs + 1 -- another program's key of another type in the state's list
    return
  end
  if fieldCount == 0 then
    return -- the job is gone (removed meanwhile)
  end
  local values, tooBig = searchedFields(jobKey, fieldCount)
  if not values[4] and rcall("HEXISTS", jobKey, "timestamp") == 0 then
    notJobs = notJobs + 1 -- a hash BullMQ did not write as a job
    return
  end
  if byName and values[1] ~= wantedName then
    return
  end
  if timeField == "timestamp" and not inRange(values[4]) then
    return
  end
  if timeField == "finishedOn" and not inRange(values[5]) then
    return
  end
  if not textMatches(values) then
    if tooBig then
      notSearched = notSearched + 1
    end
    return
  end
  if string.find(id, ":", 1, true) and nestedQueueOwns(p, id) then
    notJobs = notJobs + 1
    return
  end
  rows[#rows + 1] = summary(id, jobKey)
end

-- A list's ids are read in one LRANGE when the whole list fits the step's budget (MEMORY USAGE with
-- SAMPLES 0 walks a list's nodes, not its elements); else one at a time, as job_page.lua does, so a
-- list of huge ids costs the budget plus one id.
local listIds = nil
if isList and wholeKeyFits(stateKey, budget) then
  listIds = rcall("LRANGE", stateKey, start, start + maxScan - 1)
end

-- Ids skipped as read before (equal scores) count against the step's bound too.
while reads < maxScan and #rows < maxMatches and copied < budget do
  local id, score
  if listIds then
    id = listIds[index - start + 1]
  elseif isList then
    id = rcall("LINDEX", stateKey, index)
  else
    local entry = rcall("ZREVRANGE", stateKey, index, index, "WITHSCORES")
    id, score = entry[1], entry[2]
  end
  if not id then
    done = 1
    break
  end
  if scoreIsTime and since and tonumber(score) < since then
    done = 1
    break
  end
  copied = copied + #id
  index = index + 1
  reads = reads + 1
  local tied = skipTiedAbove and tonumber(score) == tonumber(lastScore) and bytesLess(skipTiedAbove, id)
  if not tied then
    skipTiedAbove = nil
    scanned = scanned + 1
    examine(id)
  end
  readId = #id <= MAX_CURSOR_ID and id or ""
  readScore = score or ""
end
if done == 0 and index >= total then
  done = 1
end

return {"ok", index, readId, readScore, scanned, notSearched, notJobs, total, done, rows, copied}
