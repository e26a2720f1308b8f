-- Inlined by queues/scripts.py into the scripts that need a job's state (they define `rcall` first).
-- The same order as BullMQ's getState-8.lua, with list lookups bounded by `maxScan` entries so a read
-- stays cheap on a list of millions; a state key of the wrong type is skipped, not an error.
local function jobState(p, jobId, maxScan)
  local function inZset(name)
    local found = redis.pcall("ZSCORE", p .. name, jobId)
    return type(found) == "string"
  end
  local function inList(name)
    local found = redis.pcall("LPOS", p .. name, jobId, "MAXLEN", maxScan)
    return type(found) == "number"
  end
  if inZset("completed") then
    return "completed"
  elseif inZset("failed") then
    return "failed"
  elseif inZset("delayed") then
    return "delayed"
  elseif inZset("prioritized") then
    return "prioritized"
  elseif inZset("waiting-children") then
    return "waiting-children"
  elseif inList("active") then
    return "active"
  elseif inList("wait") then
    return "waiting"
  elseif inList("paused") then
    return "waiting"
  end
  return "unknown"
end

-- "none" when the key does not exist, "not-a-job" when it is not a job's hash (not a hash, or a hash
-- without BullMQ's `timestamp` field), else "job". Decided without reading the key's contents.
local function jobShape(jobKey)
  local keyType = rcall("TYPE", jobKey)["ok"]
  if keyType == "none" then
    return "none", keyType
  end
  if keyType ~= "hash" or rcall("HEXISTS", jobKey, "timestamp") == 0 then
    return "not-a-job", keyType
  end
  return "job", keyType
end
