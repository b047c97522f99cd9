-- Shared by wrk_signed.lua and wrk_paced.lua: reads pre-signed Twilio callbacks (one per line:
-- signature TAB token TAB body, and TAB the X-Twilio-Webhooks-Signature-Settings header for a
-- shared-key signature) into ready-made wrk requests, headers as Twilio sends them.
return function(path, extra_headers)
  local requests = {}
  for line in io.lines(path) do
    local sig, token, body, settings = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t?(.*)$")
    local headers = {
      ["Content-Type"] = "application/x-www-form-urlencoded; charset=utf-8",
      ["X-Twilio-Signature"] = sig,
      ["I-Twilio-Idempotency-Token"] = token,
      ["User-Agent"] = "TwilioProxy/1.1",
    }
    if settings ~= "" then headers["X-Twilio-Webhooks-Signature-Settings"] = settings end
    for name, value in pairs(extra_headers or {}) do headers[name] = value end
    requests[#requests + 1] = wrk.format("POST", "/twilio/status", headers, body)
  end
  return requests
end
