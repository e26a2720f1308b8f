--[[
  Read-only: the first active jobs of a queue and who processes them (`pb`), to show which worker
  holds which job. Ids are read one at a time within a byte budget; `pb`, `name` and `processedOn`
  only when short; an id that names no job's hash (one of the queue's own keys, a nested queue's
  job) is skipped unread.

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
    ARGV[1]  max jobs read
    ARGV[2]  max bytes of ids together
    ARGV[3]  max bytes of one field value

  Returns { active count, id, pb, name, processedOn, ... }, or { false, type } when the active key
  is not a list.
]]
local rcall = redis.call
-- @include job_state

local p = KEYS[1]
local maxJobs = tonumber(ARGV[1])
local budget = tonumber(ARGV[2])
local maxField = tonumber(ARGV[3])
local activeKey = p .. "active"

local ok, count = pcall(rcall, "LLEN", activeKey)
if not ok then
  return {false, rcall("TYPE", activeKey)["ok"]}
end

local function short(jobKey, field)
  local sized, size = pcall(rcall, "HSTRLEN", jobKey, field)
  if not sized or size > maxField then
    return false
  end
  return rcall("HGET", jobKey, field) or false
end

local reply = {count}
local spent = 0
for index = 0, math.min(count, maxJobs) - 1 do
  if spent >= budget then
    break
  end
  local jobId = rcall("LINDEX", activeKey, index)
  if not jobId then
    break
  end
  spent = spent + #jobId
  if #jobId <= maxField and jobShape(p, jobId) == "job" then
    local jobKey = p .. jobId
    reply[#reply + 1] = jobId
    reply[#reply + 1] = short(jobKey, "pb")
    reply[#reply + 1] = short(jobKey, "name")
    reply[#reply + 1] = short(jobKey, "processedOn")
  end
end
return reply
