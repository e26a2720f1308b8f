-- Inlined by queues/scripts.py after list_count, job_state, bounded_copy and job_summary: one page of a
-- state's jobs, newest first, as job_page.lua returns it (see there), for job_page.lua and
-- queue_page.lua.
local function statePage(p, suffix, isList, rangeStart, rangeEnd, maxLen, maxIterations, budget)
  local stateKey = p .. suffix
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

  -- Redis cannot read part of a value: a field is copied here only up to this size, a longer one is
  -- not read at all, and the page as a whole copies at most `budget` bytes of values (200 rows of
  -- 11 fields of 64 KB each would be 138 MB; see includes/job_summary.lua).
  local MAX_COPY = 65536
  local ID_BUDGET = 1024 * 1024
  -- Ids longer than this are cut in the reply (the row cannot be opened then; new ids are limited to 1 KB).
  local MAX_ID = 1024

  local function summary(id)
    local jobKey = p .. id
    if string.find(id, ":", 1, true) and nestedQueueOwns(p, id) then
      return {string.sub(id, 1, MAX_ID), false, false, "nested-queue"}
    end
    -- Another program may have put an id whose key is not a hash (a list, a string) in the state's list:
    -- that row says so, and the rest of the page is read as usual.
    local fieldCount = redis.pcall("HLEN", jobKey)
    if type(fieldCount) ~= "number" then
      return {string.sub(id, 1, MAX_ID), false, false, rcall("TYPE", jobKey)["ok"]}
    end
    if fieldCount == 0 then
      return nil -- the hash is gone: skipped, as Node's getJobs skips it
    end
    local values, attempts, spent = readSummary(jobKey, fieldCount, maxLen, MAX_COPY, budget)
    budget = budget - spent
    if #id > MAX_ID then
      return {string.sub(id, 1, MAX_ID), values, attempts, "long-id"}
    end
    return {id, values, attempts}
  end

  local function idAt(index)
    if isList then
      return rcall("LINDEX", stateKey, index)
    end
    return rcall("ZREVRANGE", stateKey, index, index)[1]
  end

  local result = {total}
  local needed = rangeEnd - rangeStart + 1
  local found, copied = 0, 0
  local index = rangeStart
  local lastIndex = rangeStart + needed * maxIterations - 1
  while found < needed and index <= lastIndex do
    if copied >= ID_BUDGET then
      result[#result + 1] = {"", false, false, "ids-over-budget"}
      break
    end
    local id = idAt(index)
    if not id then
      break
    end
    copied = copied + #id
    index = index + 1
    local row = summary(id)
    if row then
      result[#result + 1] = row
      found = found + 1
    end
  end
  return result
end
