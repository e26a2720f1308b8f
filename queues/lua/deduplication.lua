--[[
  Read-only: which job holds a deduplication id of a queue (Node BullMQ's getDeduplicationJobId, a GET
  of `<prefix>:<name>:de:<id>`), checked to be that queue's own deduplication key before anything of
  it is trusted: the id is text someone chose, and `de:<id>` could name a key of another queue nested
  under this one (prefix `bull:q:de`, or queue `de` of prefix `bull:q`).

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
    ARGV[1]  deduplication id
    ARGV[2]  max bytes of the job id read (the key's value)
    ARGV[3]  max list entries searched for the job's state

  Returns {status, job id or false, pttl, job state or false}, status one of:
    "none"       no such key: nothing holds the id
    "foreign"    the key is not a deduplication key of this queue (another queue's key, or not a string)
    "too-long"   the key's value is longer than ARGV[2] bytes: not read
    "held"       held by a job of this queue that was added with this deduplication id (its `deid`,
                 or `opts.de.id` as older BullMQ kept it)
    "other-job"  the value names a job of this queue that was not added with this id
    "gone"       the value names no job (the job was removed; a deduplication ttl keeps the key)
]]
local rcall = redis.call
-- @include job_state

local p = KEYS[1]
local dedupId = ARGV[1]
local maxBytes = tonumber(ARGV[2])
local key = p .. "de:" .. dedupId

-- A release deletes the key: stricter than nestedQueueOwns, any `meta` key at any `:` of `de:<id>` (of
-- whatever fields) makes it another queue's, so a key of a nested queue whose meta lacks BullMQ's usual
-- fields is never taken for a deduplication key.
local function anyNestedMeta(name)
  local start = 1
  for _ = 1, 32 do
    local colon = string.find(name, ":", start, true)
    if not colon then
      return false
    end
    if rcall("EXISTS", p .. string.sub(name, 1, colon - 1) .. ":meta") == 1 then
      return true
    end
    start = colon + 1
  end
  return true
end

if nestedQueueOwns(p, "de:" .. dedupId) or anyNestedMeta("de:" .. dedupId) then
  return {"foreign", false, -2, false}
end
local keyType = rcall("TYPE", key)["ok"]
if keyType == "none" then
  return {"none", false, -2, false}
end
if keyType ~= "string" then
  return {"foreign", false, -2, false}
end
local ttl = rcall("PTTL", key)
if rcall("STRLEN", key) > maxBytes then
  return {"too-long", false, ttl, false}
end
local jobId = rcall("GET", key)

local shape = jobShape(p, jobId)
if shape == "none" then
  return {"gone", jobId, ttl, false}
end
if shape ~= "job" then
  return {"other-job", jobId, ttl, false}
end
local jobKey = p .. jobId
local added = false
-- `deid` is at most as long as the id it must equal: compared without reading a longer value.
if rcall("HSTRLEN", jobKey, "deid") == #dedupId then
  added = rcall("HGET", jobKey, "deid") == dedupId
elseif rcall("HEXISTS", jobKey, "deid") == 0 and rcall("HSTRLEN", jobKey, "opts") <= 65536 then
  local ok, opts = pcall(cjson.decode, rcall("HGET", jobKey, "opts") or "")
  if ok and type(opts) == "table" and type(opts["de"]) == "table" then
    added = opts["de"]["id"] == dedupId
  end
end
if not added then
  return {"other-job", jobId, ttl, false}
end
return {"held", jobId, ttl, jobState(p, jobId, tonumber(ARGV[3]))}
