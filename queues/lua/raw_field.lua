--[[
  Read-only: one field of a job's hash, up to a bound, for the "open the full value" link. Only a
  job's hash is read (a hash with BullMQ's `timestamp` field), never another key an id might name.

    KEYS[1]  the job's key
    ARGV[1]  field name
    ARGV[2]  max bytes returned

  Returns false when there is no such job or field, else { value (cut to the bound), full size }.
]]
local rcall = redis.call
local key = KEYS[1]
if rcall("TYPE", key)["ok"] ~= "hash" or rcall("HEXISTS", key, "timestamp") == 0 then
  return false
end
local size = rcall("HSTRLEN", key, ARGV[1])
if size == 0 and rcall("HEXISTS", key, ARGV[1]) == 0 then
  return false
end
local value = rcall("HGET", key, ARGV[1])
local limit = tonumber(ARGV[2])
if #value > limit then
  value = string.sub(value, 1, limit)
end
return {value, size}
