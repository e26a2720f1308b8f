-- Inlined by queues/scripts.py into scripts that decide whether a queue's workers record BullMQ's
-- metrics (they define `rcall` first).
--
-- A worker that records metrics (`metrics: {maxDataPoints}`) starts a new point of `metrics:<type>`
-- with each job that finishes in a later minute than the hash's `prevTS`, in the same script that adds
-- the job to the completed (failed) set. So while every worker records them, no member of that set has
-- a score (finishedOn) in a minute after prevTS's; one that has was finished by a worker that does not
-- record metrics, and the metrics miss it. A type without a hash is held to the other type's minute (a
-- recording worker writes the hash with the first job of its type).

-- prevTS (ms) of `metrics:<kind>`, or nil when the hash, the field or a number in it is missing.
local function metricsPrevTS(p, kind)
  local key = p .. "metrics:" .. kind
  local ok, size = pcall(rcall, "HSTRLEN", key, "prevTS")
  if not ok or size == 0 or size > 32 then
    return nil
  end
  return tonumber(rcall("HGET", key, "prevTS"))
end

-- Whether a job of the completed (failed) set finished in a minute after the minute of `since` (ms).
local function finishedAfterMinuteOf(p, kind, since)
  local from = since - since % 60000 + 60000
  local ok, later = pcall(rcall, "ZCOUNT", p .. kind, string.format("%.0f", from), "+inf")
  return ok and later > 0
end

-- 1 when the queue has BullMQ metrics that every finished job went into, else 0.
local function metricsLive(p)
  local completedSince = metricsPrevTS(p, "completed")
  local failedSince = metricsPrevTS(p, "failed")
  if not completedSince and not failedSince then
    return 0
  end
  local latest = math.max(completedSince or 0, failedSince or 0)
  if finishedAfterMinuteOf(p, "completed", completedSince or latest)
    or finishedAfterMinuteOf(p, "failed", failedSince or latest) then
    return 0
  end
  return 1
end
