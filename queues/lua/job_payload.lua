--[[
  Read-only: some fields of a job's hash (name, data, opts), for an action that copies or re-adds
  them. Only a job of this queue is read (see includes/job_state.lua), and only values within the bound.

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
    ARGV[1]  job id
    ARGV[2]  max bytes of each value
    ARGV[3…] field names

  Returns false when there is no such job, else one entry per field: its value ("" when missing),
  or false when it is longer than the bound.
]]
local rcall = redis.call
-- @include job_state

if jobShape(KEYS[1], ARGV[1]) ~= "job" then
  return false
end
local key = KEYS[1] .. ARGV[1]
local limit = tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV do
  if rcall("HSTRLEN", key, ARGV[i]) > limit then
    out[i - 2] = false
  else
    out[i - 2] = rcall("HGET", key, ARGV[i]) or ""
  end
end
return out
