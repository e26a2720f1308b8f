--[[
  Read-only estimate of what a clean of one state would touch: constant cost (ZCARD, ZCOUNT or LLEN,
  each O(log N) or O(1)), whatever the state holds.

    KEYS[1]  the state's key, `<prefix>:<name>:<suffix>`
    ARGV[1]  "finished" (completed, failed: a zset scored by finishedOn, which clean filters by score),
             "zset" (delayed, prioritized: clean reads each job's timestamp) or "list" (wait)
    ARGV[2]  the cutoff in ms: jobs finished at or before it are old enough (now - grace)

  Returns { total, older or false (not countable by score), type name when the key is of another type }
]]
local rcall = redis.call
local key, kind, cutoff = KEYS[1], ARGV[1], ARGV[2]

local ok, total = pcall(rcall, kind == "list" and "LLEN" or "ZCARD", key)
if not ok then
  return { 0, false, rcall("TYPE", key)["ok"] }
end
local older = false
if kind == "finished" then
  older = rcall("ZCOUNT", key, 0, cutoff)
end
return { total, older }
