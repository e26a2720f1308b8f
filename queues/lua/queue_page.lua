--[[
  Read-only opening of a queue page without a chosen state: the queue's counts (as counts.lua), then
  one page of the first state in the given order that holds jobs (the last one given when none does),
  in one call: the counts decide which state's page is read, so a pipeline could not do it.

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
    ARGV[1]  now, in ms (for the failures of the last hour)
    ARGV[2]  start index, ARGV[3] end index (inclusive), ARGV[4] max bytes kept of each text field,
    ARGV[5]  max back-fill iterations, ARGV[6] bytes of field values the page may copy (as job_page.lua)
    ARGV[7…] per candidate state, in order: its index in counts.lua's reply, its key suffix, "1" when
             that key is a list

  Returns { counts.lua's reply, the 1-based number of the candidate read, job_page.lua's reply }
]]
local rcall = redis.call
local p = KEYS[1]

-- @include list_count
-- @include job_state
-- @include bounded_copy
-- @include job_summary
-- @include queue_counts
-- @include state_page

local counts = queueCounts(p, ARGV[1])
local candidates = math.floor((#ARGV - 6) / 3)
local chosen = candidates
for i = 1, candidates do
  local n = counts[tonumber(ARGV[4 + 3 * i])]
  if n and n > 0 then
    chosen = i
    break
  end
end
local base = 4 + 3 * chosen
local page = statePage(p, ARGV[base + 1], ARGV[base + 2] == "1", tonumber(ARGV[2]), tonumber(ARGV[3]),
  tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]) or 8 * 1024 * 1024)
return {counts, chosen, page}
