-- wrk script: POST a distinct JSON lead per request (distinct lead_id, so dedupe never short-cuts).
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  path = args[1] or "/hooks/generic-json"
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["X-Api-Key"] = "example-key"
end

function request()
  counter = counter + 1
  local n = counter % 10000
  local body = string.format(
    '{"lead_id":"bench-%d-%d-%d","contact":{"first_name":"Ana","last_name":"Diaz",' ..
    '"phone":"(512) 201-%04d","email":"ana%d@example.com"},' ..
    '"address":{"city":"Austin","state":"Texas","zip":"78701"},"consent":"yes","utm_source":"bench"}',
    thread_id, counter, math.random(1, 1000000000), n, counter)
  return wrk.format("POST", path, nil, body)
end
