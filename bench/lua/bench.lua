-- wrk script shared by every scenario (one wrk thread: the counter below is not shared).
--   BENCH_METHOD   GET or POST (default POST)
--   BENCH_BODY     one fixed request body, or
--   BENCH_BODIES   a file with one body per line: request n sends line n (single-use codes and
--                  refresh tokens); past the end the last line is repeated (the server refuses it:
--                  counted as errors, so an exhausted file shows in the results)
--   BENCH_AUTH     an Authorization header value
--   BENCH_OUT      where done() writes the summary as JSON
wrk.method = os.getenv("BENCH_METHOD") or "POST"
if wrk.method == "POST" then
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end
wrk.body = os.getenv("BENCH_BODY")

local bodies = nil
local count = 0
local next_index = 0

init = function(args)
  local path = os.getenv("BENCH_BODIES")
  if path and path ~= "" then
    bodies = {}
    for line in io.lines(path) do
      bodies[#bodies + 1] = line
    end
    count = #bodies
  end
end

request = function()
  if bodies == nil then
    return wrk.request()
  end
  next_index = next_index + 1
  if next_index > count then
    next_index = count
  end
  return wrk.format(nil, nil, nil, bodies[next_index])
end

done = function(summary, latency, requests)
  local e = summary.errors
  local out = io.open(os.getenv("BENCH_OUT"), "w")
  out:write(string.format(
    '{"requests": %d, "duration_us": %d, "status_errors": %d, "socket_errors": %d, ' ..
    '"p50_us": %d, "p99_us": %d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
  out:close()
end
