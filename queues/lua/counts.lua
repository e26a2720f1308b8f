--[[
  Read-only job counts of one queue, in the order of queues.states.STATE_KEYS, then meta's paused
  flag and version.

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
]]
local rcall = redis.call
local p = KEYS[1]

-- @include list_count

local meta = rcall("HMGET", p .. "meta", "paused", "version")
return {
  listCount(p .. "wait"),
  rcall("LLEN", p .. "active"),
  rcall("ZCARD", p .. "prioritized"),
  rcall("ZCARD", p .. "delayed"),
  rcall("ZCARD", p .. "completed"),
  rcall("ZCARD", p .. "failed"),
  rcall("ZCARD", p .. "waiting-children"),
  listCount(p .. "paused"),
  meta[1] or "",
  meta[2] or "",
}
