function touch(rec) rec['w'] = 1; aerospike:update(rec) end
function noop(rec) return 1 end
