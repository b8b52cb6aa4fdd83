-- Background UDF: run on every selected record by the server, e.g.
--   asudf execute test.sales stamp.mark checked
-- then browse the result: asudf query test.sales --bins amount,stamp

function mark(rec, label)
    rec['stamp'] = label
    aerospike:update(rec)
end
