-- Replays pre-signed Twilio callbacks (one per line: signature TAB token TAB body) round-robin,
-- and prints the result as one JSON line for bench/ingress.py.
-- wrk runs scripts from any directory: load the shared reader from beside this file.
local load_callbacks = dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "wrk_callbacks.lua")
local requests = {}
local index = 0

function init(args)
  requests = load_callbacks(args[1])
end

function request()
  index = index % #requests + 1
  return requests[index]
end

function done(summary, latency, requests)
  io.write(string.format(
    'WRK_JSON {"requests": %d, "seconds": %f, "p50_ms": %f, "p99_ms": %f, "non2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
