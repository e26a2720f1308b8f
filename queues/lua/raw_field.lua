--[[
  Read-only: one field of a job's hash, for the "open the full value" link. Only a job of this queue is
  read (see includes/job_state.lua), and only a value within the bound: a longer one is not copied
  at all (Redis cannot read part of a hash value), its size is returned instead.

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
    ARGV[1]  job id
    ARGV[2]  field name
    ARGV[3]  max bytes read

  Returns false when there is no such job or field, else { value (or false when over the bound), size }.
]]
local rcall = redis.call
-- @include job_state

if jobShape(KEYS[1], ARGV[1]) ~= "job" then
  return false
end
local key = KEYS[1] .. ARGV[1]
if rcall("HEXISTS", key, ARGV[2]) == 0 then
  return false
end
local size = rcall("HSTRLEN", key, ARGV[2])
if size > tonumber(ARGV[3]) then
  return {false, size}
end
return {rcall("HGET", key, ARGV[2]), size}
