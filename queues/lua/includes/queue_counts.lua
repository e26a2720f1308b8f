-- Inlined by queues/scripts.py after list_count (it uses isLegacyQueue and listCount): the job counts of
-- one queue, as counts.lua returns them, for counts.lua and queue_page.lua.
--
-- Besides the counts: when the queue last failed a job and how many it failed in the hour before `now`
-- (ms). The `failed` zset is scored by finishedOn, so both are O(log n): ZREVRANGE failed 0 0
-- WITHSCORES and ZCOUNT failed <now - 1 h> +inf. Jobs removed on failure (removeOnFail) are not in it.
--
-- Returns { count or false, ... (one per state), paused, version, { suffix, type, ... },
--           newest failed score or false, failed since now - 1 h or false }
local HOUR_MS = 3600000

local function nowMs(given)
  local now = tonumber(given)
  if now then
    return now
  end
  local time = rcall("TIME")
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end

-- BullMQ writes `paused` as "1" and `version` as "bullmq:<semver>": a longer value (anyone may write
-- one) is not copied, on every count of every page. A long `paused` still says paused; a long
-- `version` is no version BullMQ wrote.
local MAX_FLAG_BYTES = 64

local function metaFlags(meta)
  local sizes = { rcall("HSTRLEN", meta, "paused"), rcall("HSTRLEN", meta, "version") }
  local paused, version = "", ""
  if sizes[1] > MAX_FLAG_BYTES then
    paused = "1"
  elseif sizes[1] > 0 then
    paused = rcall("HGET", meta, "paused")
  end
  if sizes[2] > 0 and sizes[2] <= MAX_FLAG_BYTES then
    version = rcall("HGET", meta, "version")
  end
  return { paused, version }
end

local function queueCounts(p, now)
  local problems = {}
  local paused, version = "", ""
  local ok, meta = pcall(metaFlags, p .. "meta")
  if ok then
    paused, version = meta[1], meta[2]
  else
    problems[#problems + 1] = "meta"
    problems[#problems + 1] = rcall("TYPE", p .. "meta")["ok"]
  end
  local legacy = isLegacyQueue(p, version)

  local function count(command, suffix)
    local counted, n = pcall(command, p .. suffix)
    if counted then
      return n
    end
    problems[#problems + 1] = suffix
    problems[#problems + 1] = rcall("TYPE", p .. suffix)["ok"]
    return false
  end
  local function llen(key) return listCount(key, legacy) end
  local function alen(key) return rcall("LLEN", key) end
  local function zcard(key) return rcall("ZCARD", key) end

  local counts = {
    count(llen, "wait"),
    count(alen, "active"),
    count(zcard, "prioritized"),
    count(zcard, "delayed"),
    count(zcard, "completed"),
    count(zcard, "failed"),
    count(zcard, "waiting-children"),
    count(llen, "paused"),
  }
  counts[#counts + 1] = paused
  counts[#counts + 1] = version
  counts[#counts + 1] = problems
  local lastFailedAt, failedLastHour = false, false
  if counts[6] then -- the failed zset is a zset (or absent)
    local failedKey = p .. "failed"
    lastFailedAt = rcall("ZREVRANGE", failedKey, 0, 0, "WITHSCORES")[2] or false
    failedLastHour = rcall("ZCOUNT", failedKey, string.format("%.0f", nowMs(now) - HOUR_MS), "+inf")
  end
  counts[#counts + 1] = lastFailedAt
  counts[#counts + 1] = failedLastHour
  -- The newest kept completion (its score is finishedOn): "work but nothing completed lately" orders
  -- the overview. None kept (removeOnComplete: true) tells nothing.
  local lastCompletedAt = false
  if counts[5] and counts[5] > 0 then
    lastCompletedAt = rcall("ZREVRANGE", p .. "completed", 0, 0, "WITHSCORES")[2] or false
  end
  counts[#counts + 1] = lastCompletedAt
  return counts
end
