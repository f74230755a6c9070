-- wrk script: POST /v1/decide with one of 64 bodies in turn (64 users, a
-- simulator-like 16-number state each), JSON content type.
-- Usage: wrk -t2 -c64 -d10s --latency -s decide.lua http://127.0.0.1:PORT/v1/decide
local bodies = {}
local n = 64
for i = 1, n do
	local state = {}
	for j = 1, 16 do
		-- deterministic values in the simulator's ranges (most in [-1, 1.5])
		state[j] = string.format("%.4f", math.sin(i * 7.1 + j * 3.3) * 1.2)
	end
	bodies[i] = string.format('{"user_id":"wrk-u-%d","episode_id":"wrk-e-%d","state":[%s],"metadata":{"campaign":"wrk"}}',
		i, i, table.concat(state, ","))
end

local k = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
	k = k % n + 1
	return wrk.format(nil, nil, nil, bodies[k])
end

-- A non-200 answer is a bug of the setup (400) or back pressure (503):
-- count them by status and print them at the end beside wrk's own
-- "Non-2xx or 3xx responses" line.
local statuses = {}
response = function(status, headers, body)
	if status ~= 200 then
		statuses[status] = (statuses[status] or 0) + 1
	end
end

done = function(summary, latency, requests)
	for status, count in pairs(statuses) do
		io.write(string.format("status %d: %d answers (thread-local counts may be partial)\n", status, count))
	end
end
