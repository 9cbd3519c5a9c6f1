-- wrk: each thread sends its own file of distinct, signed events, one per request.
local counter = 0
function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
end

local events, next_event = {}, 1
function init(args)
  local file = io.open(os.getenv("EVENTS") .. "." .. id, "r")
  for line in file:lines() do
    local header, body = line:match("^([^\t]+)\t(.*)$")
    events[#events + 1] = wrk.format("POST", "/stripe_webhook",
      { ["Stripe-Signature"] = header, ["Content-Type"] = "application/json" }, body)
  end
  file:close()
end

function request()
  local r = events[next_event]
  if r == nil then
    error("ran out of events: generate more")
  end
  next_event = next_event + 1
  return r
end
