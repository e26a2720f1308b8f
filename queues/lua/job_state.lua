--[[
  Read-only: whether a key is a job, and the job's state, bounded (see includes/job_state.lua). The
  actions ask this before they call BullMQ's scripts, which check the state again atomically.

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
    ARGV[1]  job id
    ARGV[2]  max list entries searched

  Returns "none", "not-a-job", or the state ("unknown" when the job is in no state BullMQ lists).
]]
local rcall = redis.call
-- @include job_state

local shape = jobShape(KEYS[1], ARGV[1])
if shape ~= "job" then
  return shape
end
return jobState(KEYS[1], ARGV[1], tonumber(ARGV[2]))
