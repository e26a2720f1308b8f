--[[
  Read-only batch of the failed set, newest first, for grouping failures (queues/error_groups.py): for
  each job only its failedReason and the newest entry of its stacktrace, each measured first (HSTRLEN)
  and read only when it fits its cap: Redis cannot read part of a value, so a 5 MB stacktrace is never
  copied (its job is then grouped by failedReason alone).

  What one call copies is bounded: ids are read one at a time (ZREVRANGE i i), and the call stops after
  the job that spends BUDGET bytes (ids, reasons and stacktraces copied); the caller goes on from the
  index it returns.

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
    ARGV[1]  first index (0 = newest)
    ARGV[2]  last index (inclusive)
    ARGV[3]  REASON_CAP: a longer failedReason is not read (its size is returned)
    ARGV[4]  STACK_CAP: a longer stacktrace is not read
    ARGV[5]  BUDGET: bytes this call may copy
    ARGV[6]  ENTRY_CAP: bytes of the newest stack entry returned
    ARGV[7]  MAX_ID: longer ids are cut and marked

  Returns { zcard, next index, newest member or false, its score or false, rows... } with a row
    { id, score, reason or false, reason size, stack kind, stack text, flag, index }
  stack kind: "ok" (text = the newest entry, cut to ENTRY_CAP), "none" (missing or empty list),
  "big" (text = its size), "not-json", "not-list", "not-text" (newest entry is not a string);
  flag: "" or "long-id" (id cut) or "not-a-hash" (the member's key is another type; nothing read).
  A member whose hash is gone is skipped. When `failed` is not a zset: { false, its type }.
]]
local rcall = redis.call
local p = KEYS[1]
local failedKey = p .. "failed"
local first = tonumber(ARGV[1])
local last = tonumber(ARGV[2])
local reasonCap = tonumber(ARGV[3])
local stackCap = tonumber(ARGV[4])
local budget = tonumber(ARGV[5])
local entryCap = tonumber(ARGV[6])
local maxId = tonumber(ARGV[7])

local countOk, total = pcall(rcall, "ZCARD", failedKey)
if not countOk then
  return {false, rcall("TYPE", failedKey)["ok"]}
end
local newest = rcall("ZREVRANGE", failedKey, 0, 0, "WITHSCORES")
local result = {total, first, newest[1] or false, newest[2] or false}

local function newestEntry(raw)
  local ok, decoded = pcall(cjson.decode, raw)
  if not ok then
    return "not-json", ""
  end
  if type(decoded) ~= "table" or (#decoded == 0 and next(decoded) ~= nil) then
    return "not-list", ""
  end
  local entry = decoded[#decoded]
  if entry == nil then
    return "none", ""
  end
  if type(entry) ~= "string" then
    return "not-text", ""
  end
  return "ok", string.sub(entry, 1, entryCap)
end

local spent = 0
local index = first
while index <= last and spent < budget do
  local member = rcall("ZREVRANGE", failedKey, index, index, "WITHSCORES")
  if #member == 0 then
    break
  end
  local position = index
  index = index + 1
  local id, score = member[1], member[2]
  spent = spent + #id
  local flag = ""
  if #id > maxId then
    flag = "long-id"
  end
  local jobKey = p .. id
  local reasonSize = redis.pcall("HSTRLEN", jobKey, "failedReason")
  if type(reasonSize) ~= "number" then
    result[#result + 1] = {string.sub(id, 1, maxId), score, false, 0, "none", "", "not-a-hash", position}
  elseif reasonSize > 0 or rcall("EXISTS", jobKey) == 1 then
    local stackSize = rcall("HSTRLEN", jobKey, "stacktrace")
    local reason = false
    if reasonSize <= reasonCap then
      reason = rcall("HGET", jobKey, "failedReason") or false
      spent = spent + reasonSize
    end
    local kind, stack = "none", ""
    if stackSize > stackCap then
      kind, stack = "big", tostring(stackSize)
    elseif stackSize > 0 then
      local raw = rcall("HGET", jobKey, "stacktrace")
      spent = spent + stackSize
      kind, stack = newestEntry(raw)
    end
    result[#result + 1] = {string.sub(id, 1, maxId), score, reason, reasonSize, kind, stack, flag, position}
  end
end
result[2] = index
return result
