--[[
  Read-only job counts of one queue, in the order of queues.states.STATE_KEYS, then meta's paused
  flag and version, then the state keys that are not of BullMQ's type, then the failure recency:
  the score (finishedOn) of the newest failed job and the failures of the last hour.

  A state key of the wrong type (another program wrote a hash where BullMQ keeps a list) does not
  fail the read: its count is false and its suffix and type are listed, so the queue shows what is
  wrong and every other queue read in the same pipeline is unaffected.

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
    ARGV[1]  now, in ms (optional: Redis's TIME without it)

  Returns { count or false, ... (one per state), paused, version, { suffix, type, ... },
            last failed at or false, failed in the last hour or false,
            last completed at (the newest kept completion's score) or false }
]]
local rcall = redis.call

-- @include list_count
-- @include queue_counts

return queueCounts(KEYS[1], ARGV[1])
