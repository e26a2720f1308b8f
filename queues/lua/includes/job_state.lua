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

-- True when `p .. jobId` is a key of another BullMQ queue nested under this one: for queue
-- `bull:acme`, the id `billing:inv-1` names `bull:acme:billing:inv-1`, a job of the queue with prefix
-- `bull:acme` and name `billing`. Checked at each `:` of the id (at most 32) by that queue's meta.
local function nestedQueueOwns(p, jobId)
  local start = 1
  for _ = 1, 32 do
    local colon = string.find(jobId, ":", start, true)
    if not colon then
      return false
    end
    local ok, meta = pcall(rcall, "HMGET", p .. string.sub(jobId, 1, colon - 1) .. ":meta",
      "timestamp", "opts.maxLenEvents", "version")
    if ok and not meta[1] and (meta[2] or (meta[3] and string.sub(meta[3], 1, 7) == "bullmq:")) then
      return true
    end
    start = colon + 1
  end
  return true  -- more colons than are checked: not treated as this queue's job
end

-- "none" when the key does not exist, "not-a-job" when it is not a job's hash (not a hash, a hash
-- without BullMQ's `timestamp` field, or a job of a nested queue), else "job"; and the key's type.
-- Decided without reading the key's contents.
local function jobShape(p, jobId)
  local jobKey = p .. jobId
  local keyType = rcall("TYPE", jobKey)["ok"]
  if keyType == "none" then
    return "none", keyType
  end
  if keyType ~= "hash" or rcall("HEXISTS", jobKey, "timestamp") == 0 or nestedQueueOwns(p, jobId) then
    return "not-a-job", keyType
  end
  return "job", keyType
end
