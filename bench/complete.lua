--[[
  Moves up to ARGV[1] jobs from `wait` to `completed` and writes the fields that BullMQ 6.7's own
  scripts write when a worker takes a job and completes it; returns how many jobs it moved.

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
    ARGV[1]  batch size

  What a worker run does (bullmq 6.7.0, commands/includes/prepareJobForProcessing.lua and
  commands/moveToFinished-14.lua, with removeOnComplete unset and no worker name) and what this does:
    moveToActive:   LMOVE wait -> active; HMSET processedOn; HINCRBY ats 1; SET <job>:lock; XADD active
    moveToFinished: LREM active; HINCRBY atm 1; ZADD completed <finishedOn> <id>;
                    HSET returnvalue <json> finishedOn <ts>; XADD completed (+ drained at the end)
  Here: RPOP wait (the oldest job, as a worker takes it); HSET processedOn, finishedOn, returnvalue;
  HINCRBY ats 1 and atm 1; ZADD completed <finishedOn> <id>. No lock key (a worker deletes it at the
  end) and no events (the stream is capped at 10,000 entries and no read path of a job list or
  overview reads it). processedOn is 20-36 ms after the job's timestamp and finishedOn 5-33 ms later,
  so every job has a plausible duration and the completed set is ordered as a real run orders it.
]]
local rcall = redis.call
local prefix = KEYS[1]
local batch = tonumber(ARGV[1])
local moved = 0
for _ = 1, batch do
  local jobId = rcall("RPOP", prefix .. "wait")
  if not jobId then
    break
  end
  local jobKey = prefix .. jobId
  local created = tonumber(rcall("HGET", jobKey, "timestamp")) or 0
  local n = tonumber(jobId) or 0
  local processedOn = created + 20 + (n % 17)
  local finishedOn = processedOn + 5 + (n % 29)
  rcall("HSET", jobKey, "processedOn", processedOn, "finishedOn", finishedOn,
    "returnvalue", '{"delivered":true,"messageId":"msg-' .. jobId .. '"}')
  rcall("HINCRBY", jobKey, "ats", 1)
  rcall("HINCRBY", jobKey, "atm", 1)
  rcall("ZADD", prefix .. "completed", finishedOn, jobId)
  moved = moved + 1
end
return moved
