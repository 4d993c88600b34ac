-- Sliding-window admission over granule counters (see package ratelimit).
-- KEYS[i]: one hash per rule; field "g" holds the granule length, every
--          other field is a granule index with its request count.
-- ARGV[1]: decision time in microseconds since the epoch, or "" to use the
--          server's TIME (the one clock all replicas share).
-- ARGV[2i], ARGV[2i+1]: rule i's limit and granule length in microseconds.
-- Returns {now, allowed_1, used_1, oldest_1, allowed_2, ...}: allowed is
-- 1 or 0, used the count in the window after this request, oldest the
-- index of the oldest non-zero granule or -1.
-- A request is counted against every key only if every rule admits it.
local GRANULES = 64
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
else
  now = tonumber(ARGV[1])
end

local n = #KEYS
local limits, grans, heads, used, oldest, fresh = {}, {}, {}, {}, {}, {}
local all = true
for i = 1, n do
  local limit = tonumber(ARGV[2 * i])
  local g = tonumber(ARGV[2 * i + 1])
  local head = math.floor(now / g)
  local kv = redis.call('HGETALL', KEYS[i])
  local idx, cnt = {}, {}
  local sameg = false
  for j = 1, #kv, 2 do
    if kv[j] == 'g' then
      sameg = tonumber(kv[j + 1]) == g
    else
      local x = tonumber(kv[j])
      idx[#idx + 1] = x
      cnt[#cnt + 1] = tonumber(kv[j + 1])
      -- A granule newer than now (clock stepped back): count from it.
      if x > head then head = x end
    end
  end
  local total, first = 0, -1
  if #kv > 0 and not sameg then
    -- The key's window length changed: start over, like the memory backend.
    redis.call('DEL', KEYS[i])
    fresh[i] = true
  else
    fresh[i] = (#kv == 0)
    local lo = head - GRANULES
    local stale = {}
    for j = 1, #idx do
      if idx[j] < lo then
        stale[#stale + 1] = string.format('%d', idx[j])
      elseif cnt[j] > 0 then
        total = total + cnt[j]
        if first < 0 or idx[j] < first then first = idx[j] end
      end
    end
    if #stale > 0 then redis.call('HDEL', KEYS[i], unpack(stale)) end
  end
  limits[i], grans[i], heads[i], used[i], oldest[i] = limit, g, head, total, first
  if total >= limit then all = false end
end

local out = {now}
for i = 1, n do
  local ok = used[i] < limits[i]
  if all then
    local g = grans[i]
    redis.call('HINCRBY', KEYS[i], string.format('%d', heads[i]), 1)
    if fresh[i] then redis.call('HSET', KEYS[i], 'g', string.format('%d', g)) end
    -- After GRANULES+1 granules without traffic every count is stale.
    redis.call('PEXPIRE', KEYS[i], math.ceil((GRANULES + 1) * g / 1000) + 1)
    used[i] = used[i] + 1
    if oldest[i] < 0 then oldest[i] = heads[i] end
  end
  out[#out + 1] = ok and 1 or 0
  out[#out + 1] = used[i]
  out[#out + 1] = oldest[i]
end
return out
