-- POST /api/v1/campaigns/{id}/claims, every request a consumer never seen before
-- ("<tag>-<thread id>-<per-thread counter>").
-- Arguments after wrk's "--": api_key ids_file seconds threads mode tag [keyed]
--   keyed "keyed": every request carries its own Idempotency-Key (the consumer's name).
--   mode "spread": for `seconds`, request i goes to campaign i mod n of the file (one id:
--                  one hot campaign; 1,000 ids: claims spread over 1,000 campaigns).
--   mode "once":   every campaign in the file gets exactly one claim (thread k takes ids
--                  k, k + threads, ...); the thread stops once all of them are answered.
--                  (A thread with no ids would wait for the -d limit: use ids >= threads.)
-- Afterwards each connection is parked: it is handed a request head that never ends, so
-- it sends nothing more and wrk records no latency for it, while the claims still in
-- flight are answered and counted. The kit runs wrk a few seconds past the deadline for
-- that drain, so every 201 the server sent is counted and the database can be checked
-- against the count.

local paths, headers, mode, tag, deadline, keyed
local n = 0
local pending = 0
kit_parked_408 = 0
local park = "GET /livez HTTP/1.1\r\nHost: kit\r\nX-Kit: parked\r\n"

function init(args)
  local key, file, seconds, threads = args[1], args[2], tonumber(args[3]), tonumber(args[4])
  mode, tag, keyed = args[5], args[6], args[7] == "keyed"
  local all = {}
  for line in io.lines(file) do
    if #line > 0 then table.insert(all, line) end
  end
  local mine = all
  if mode == "once" then
    mine = {}
    for i = kit_tid + 1, #all, threads do table.insert(mine, all[i]) end
    pending = #mine
  end
  paths = {}
  for i, id in ipairs(mine) do paths[i] = "/api/v1/campaigns/" .. id .. "/claims" end
  headers = { ["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json" }
  deadline = kit_now() + seconds
end

local verified = false

function request()
  -- wrk builds thread 0's first request once, before the run, to check the script, and
  -- never sends it: that one must not use up a campaign or a consumer.
  if kit_tid == 0 and not verified then
    verified = true
    return wrk.format("POST", paths[1], headers, "{}")
  end
  if mode == "once" then
    if n >= #paths then return park end
  elseif kit_now() >= deadline then
    return park
  end
  n = n + 1
  if kit_first == 0 then kit_first = kit_now() end
  local consumer = tag .. "-" .. kit_tid .. "-" .. n
  local body = "{\"consumer\":\"" .. consumer .. "\"}"
  if keyed then headers["Idempotency-Key"] = consumer end
  return wrk.format("POST", paths[(n - 1) % #paths + 1], headers, body)
end

function response(status)
  -- 408: actix-web gave up on a parked connection (5 s without a request head); not a
  -- claim. Only "once" phases park that long.
  if status == 408 then
    kit_parked_408 = kit_parked_408 + 1
    return
  end
  kit_status[status] = (kit_status[status] or 0) + 1
  kit_last = kit_now()
  if mode == "once" then
    pending = pending - 1
    if (#paths - pending) % 5000 == 0 then
      io.write("KIT-PROGRESS " .. (#paths - pending) .. "\n")
      io.flush()
    end
    if pending == 0 then
      -- wrk's main thread sleeps for the whole -d; the kit interrupts it (SIGINT) once
      -- every thread has said this.
      io.write("KIT-THREAD-DONE\n")
      io.flush()
      wrk.thread:stop()
    end
  end
end
