--[[
  Read-only: whether the Redis user running this may take actions on a queue, asked with
  redis.acl_check_cmd (Redis 7), which answers for the user's ACL without running anything. An action
  is BullMQ's script by EVALSHA (whose keys Redis counts as written) and, inside it, writes of the
  queue's lists, sorted sets, hashes and stream, and of its job keys.

    KEYS[1]  `<prefix>:<name>:wait` (the one key declared, so that a cluster routes it to its slot)
    ARGV[1]  `<prefix>:<name>:`, the queue's other keys are named from it (only checked, never read)

  Returns false when this Redis cannot tell (no redis.acl_check_cmd), else the checks it denies, each
  as "<command> <key>" (an empty list: every check allowed).
]]
if type(redis.acl_check_cmd) ~= "function" then
  return false
end
local sha = "0000000000000000000000000000000000000000"
local p = ARGV[1]
local checks = {
  {"evalsha", sha, "1", KEYS[1]},
  {"script", "load", "return 1"},
  {"lpush", KEYS[1], "x"},
  {"lrem", KEYS[1], "0", "x"},
  {"zadd", p .. "failed", "0", "x"},
  {"zrem", p .. "failed", "x"},
  {"hset", p .. "meta", "x", "x"},
  {"hdel", p .. "meta", "x"},
  {"xadd", p .. "events", "*", "x", "x"},
  {"hset", p .. "1", "x", "x"},
  {"del", p .. "1"},
  {"incr", p .. "id"},
}
local denied = {}
for _, check in ipairs(checks) do
  local ok, allowed = pcall(redis.acl_check_cmd, unpack(check))
  if not ok or not allowed then
    local key = check[1] == "evalsha" and check[4] or check[2]
    denied[#denied + 1] = check[1] .. " " .. key
  end
end
return denied
