--[[
  Read-only: some fields of a job's hash (name, data, opts), for an action that copies or re-adds
  them. Only a job's hash is read, and only values within the bound.

    KEYS[1]  the job's key
    ARGV[1]  max bytes of each value
    ARGV[2…] field names

  Returns false when there is no such job, else one entry per field: its value ("" when missing),
  or false when it is longer than the bound.
]]
local rcall = redis.call
local key = KEYS[1]
if rcall("TYPE", key)["ok"] ~= "hash" or rcall("HEXISTS", key, "timestamp") == 0 then
  return false
end
local limit = tonumber(ARGV[1])
local out = {}
for i = 2, #ARGV do
  if rcall("HSTRLEN", key, ARGV[i]) > limit then
    out[i - 1] = false
  else
    out[i - 1] = rcall("HGET", key, ARGV[i]) or ""
  end
end
return out
