-- Offers each pre-signed callback exactly once, at a constant total rate, then stops.
-- args: requests file (signature TAB token TAB body per line), rate per second.
-- Paced with wrk's delay() and a wall clock from LuaJIT's FFI (wrk itself has no rate option).
-- wrk runs scripts from any directory: load the shared reader from beside this file.
local load_callbacks = dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "wrk_callbacks.lua")
local ffi = require("ffi")
ffi.cdef[[
  typedef struct { long tv_sec; long tv_usec; } timeval;
  int gettimeofday(timeval *tv, void *tz);
]]
local tv = ffi.new("timeval")
local function now()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) + tonumber(tv.tv_usec) / 1e6
end

local requests, sent, rate, start = {}, 0, 1000, nil
-- Send times handed out so far. Every waiting connection asks delay() before its request is
-- taken, so a due time computed from `sent` alone is the same for all of them, and they went
-- out together: bursts of up to one per connection instead of a constant rate.
local slots = 0
acks, refusals, offered = 0, 0, 0  -- globals: done() reads them through thread:get()
local threads = {}

function setup(thread)
  threads[#threads + 1] = thread
end

function init(args)
  rate = tonumber(args[2])
  -- A new connection per callback, as Twilio sends them.
  requests = load_callbacks(args[1], {["Connection"] = "close"})
end

function delay()
  if start == nil then start = now() end
  if sent >= #requests then return 3600000 end  -- all offered: stay quiet until wrk stops
  slots = math.max(slots, sent)  -- a connection's first request takes no slot (see request())
  local due = start + slots / rate
  slots = slots + 1
  local wait = (due - now()) * 1000
  if wait < 0 then return 0 end
  return wait
end

local primed = false

function request()
  -- wrk asks for one request it may never send (when it sets a thread up): give it the probe,
  -- so that every callback handed out is really sent.
  if not primed then
    primed = true
    return wrk.format("GET", "/healthz")
  end
  sent = sent + 1
  offered = math.min(sent, #requests)
  if sent > #requests then
    -- A connection's first request skips delay(): never send a callback twice, ask the probe.
    return wrk.format("GET", "/healthz")
  end
  return requests[sent]
end

function response(status, headers, body)
  -- A callback's 200 has an empty body; the probe's has text.
  if status >= 200 and status < 300 then
    if #body == 0 then acks = acks + 1 end
  else
    refusals = refusals + 1
  end
end

function done(summary, latency, requests)
  local acked, refused, handed = 0, 0, 0
  for _, t in ipairs(threads) do
    acked = acked + t:get("acks")
    refused = refused + t:get("refusals")
    handed = handed + t:get("offered")
  end
  io.write(string.format(
    'WRK_JSON {"offered": %d, "acks": %d, "refused": %d, "requests": %d, "seconds": %f, "p50_ms": %f, "p99_ms": %f, "non2xx": %d, "socket_errors": %d}\n',
    handed, acked, refused, summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
