--[[
  Read-only: one queue's counts, as counts.lua returns them, then the totals Node BullMQ's
  exportPrometheusMetrics() writes as bullmq_job_completed_total / bullmq_job_failed_total: the
  `count` field of the `metrics:completed` and `metrics:failed` hashes (0 when absent, as Node reads
  them). A field over 32 bytes or a key of the wrong type gives false instead (bounded, never fails).

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
    ARGV[1]  now, in ms

  Returns { ...counts.lua's reply..., { completed total or false, failed total or false } }
]]
local rcall = redis.call

-- @include list_count
-- @include queue_counts

local function total(key)
  local ok, size = pcall(rcall, "HSTRLEN", key, "count")
  if not ok or size > 32 then
    return false
  end
  return rcall("HGET", key, "count") or "0"
end

local reply = queueCounts(KEYS[1], ARGV[1])
reply[#reply + 1] = { total(KEYS[1] .. "metrics:completed"), total(KEYS[1] .. "metrics:failed") }
return reply
