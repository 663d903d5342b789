-- wrk script shared by the benchmarks: POST a distinct JSON lead per request (a distinct
-- lead_id, so dedupe never short-cuts), count 2xx answers, and print one summary line:
--   SUMMARY acked=N refused=N seconds=S p50_us=N p99_us=N socket_errors=N
-- Usage: wrk -s bench/lead.lua URL -- [PATH] [RUN]   (PATH defaults to /hooks/generic-json)
-- RUN goes into every lead_id: LuaJIT's math.random starts from the same seed in every wrk run,
-- so without a distinct RUN a second run against the same relay repeats the first run's ids and
-- the relay answers them as duplicates (200, nothing stored or delivered).
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  path = args[1] or "/hooks/generic-json"
  run = args[2] or "0"
  counter = 0
  acked = 0
  refused = 0
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Api-Key"] = "example-key"
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"lead_id":"bench-%s-%d-%d-%d","contact":{"first_name":"Ana","last_name":"Diaz",' ..
    '"phone":"(512) 201-%04d","email":"ana%d@example.com"},' ..
    '"address":{"city":"Austin","state":"Texas","zip":"78701"},"consent":"yes","utm_source":"bench"}',
    run, thread_id, counter, math.random(1, 1000000000), counter % 10000, counter)
  return wrk.format("POST", path, nil, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    acked = acked + 1
  else
    refused = refused + 1
  end
end

function done(summary, latency, requests)
  local acked_total, refused_total = 0, 0
  for _, thread in ipairs(threads) do
    acked_total = acked_total + thread:get("acked")
    refused_total = refused_total + thread:get("refused")
  end
  local errors = summary.errors
  io.write(string.format(
    "SUMMARY acked=%d refused=%d seconds=%.3f p50_us=%d p99_us=%d socket_errors=%d\n",
    acked_total, refused_total, summary.duration / 1e6, latency:percentile(50),
    latency:percentile(99), errors.connect + errors.read + errors.write + errors.timeout))
end
