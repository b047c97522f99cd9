-- Replays pre-signed Twilio callbacks (one per line: signature TAB token TAB body) round-robin,
-- and prints the result as one JSON line for bench/ingress.py.
local requests = {}
local index = 0

function init(args)
  for line in io.lines(args[1]) do
    local sig, token, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
    requests[#requests + 1] = wrk.format("POST", "/twilio/status", {
      ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8",
      ["X-Twilio-Signature"] = sig,
      ["I-Twilio-Idempotency-Token"] = token,
      ["User-Agent"] = "TwilioProxy/1.1",
    }, body)
  end
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
