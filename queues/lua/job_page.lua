--[[
  Read-only page of one state's jobs, newest first, in the order Node BullMQ's
  queue.getJobs(state, start, end, false) returns: ids whose hash is gone are skipped and the page is
  back-filled from later ids, as BullMQ's getJobs-1.lua does. Only summary fields are returned, and
  long ones are cut here so a multi-megabyte failedReason never crosses the wire.

  What is copied into the script is bounded too: ids are read one at a time until ID_BUDGET bytes of
  them are copied (a job author chooses ids as long as they like; the page then ends with a row
  { "", false, false, "ids-over-budget" }), and a summary field longer than MAX_COPY is not read.

    KEYS[1]  queue key prefix, `<prefix>:<name>:`
    ARGV[1]  state key suffix (wait, active, delayed, ...)
    ARGV[2]  "1" when that key is a list, "0" for a zset
    ARGV[3]  start index
    ARGV[4]  end index (inclusive)
    ARGV[5]  max bytes kept of each text field
    ARGV[6]  max back-fill iterations
    ARGV[7]  bytes of field values the whole page may copy (once spent, a field is read only when it
             fits what is left; others show as not read)

  Returns { total, { id, { field values in SUMMARY order }, optsAttempts }, ... }; a row whose key is
  not a hash is { id, false, false, its type }. When the state's own key is of the wrong type the
  reply is { false, its type }.
]]
local rcall = redis.call

-- @include list_count
-- @include job_state
-- @include bounded_copy
-- @include job_summary
-- @include state_page

return statePage(KEYS[1], ARGV[1], ARGV[2] == "1", tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]),
  tonumber(ARGV[6]), tonumber(ARGV[7]) or 8 * 1024 * 1024)
