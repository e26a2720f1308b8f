--[[
  Read-only job counts of one queue, in the order of queues.states.STATE_KEYS, then meta's paused
  flag and version, then the state keys that are not of BullMQ's type.

  A state key of the wrong type (another program wrote a hash where BullMQ keeps a list) does not
  fail the read: its count is false and its suffix and type are listed, so the queue shows what is
  wrong and every other queue read in the same pipeline is unaffected.

    KEYS[1]  queue key prefix, `<prefix>:<name>:`

  Returns { count or false, ... (one per state), paused, version, { suffix, type, ... } }
]]
local rcall = redis.call
local p = KEYS[1]

-- @include list_count

local problems = {}
local paused, version = "", ""
local ok, meta = pcall(rcall, "HMGET", p .. "meta", "paused", "version")
if ok then
  paused, version = meta[1] or "", meta[2] or ""
else
  problems[#problems + 1] = "meta"
  problems[#problems + 1] = rcall("TYPE", p .. "meta")["ok"]
end
local legacy = isLegacyQueue(p, version)

local function count(command, suffix)
  local counted, n = pcall(command, p .. suffix)
  if counted then
    return n
  end
  problems[#problems + 1] = suffix
  problems[#problems + 1] = rcall("TYPE", p .. suffix)["ok"]
  return false
end
local function llen(key) return listCount(key, legacy) end
local function alen(key) return rcall("LLEN", key) end
local function zcard(key) return rcall("ZCARD", key) end

local counts = {
  count(llen, "wait"),
  count(alen, "active"),
  count(zcard, "prioritized"),
  count(zcard, "delayed"),
  count(zcard, "completed"),
  count(zcard, "failed"),
  count(zcard, "waiting-children"),
  count(llen, "paused"),
}
counts[#counts + 1] = paused
counts[#counts + 1] = version
counts[#counts + 1] = problems
return counts
