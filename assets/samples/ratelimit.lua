-- Record UDF: a fixed-window rate limiter. Each call counts one request for
-- the record's key; it answers true while the window's count is under the
-- limit, false once the limit is reached.
--   asudf apply test.limits user1 ratelimit.allow 3 60

function allow(rec, limit, window_secs)
    local window = aerospike:get_current_time() // (window_secs * 1000)
    if rec['window'] ~= window then
        rec['window'] = window
        rec['count'] = 0
    end
    if rec['count'] >= limit then
        return false
    end
    rec['count'] = rec['count'] + 1
    if aerospike:exists(rec) then
        aerospike:update(rec)
    else
        aerospike:create(rec)
    end
    return true
end
