-- Stream UDF: the total of the `amount` bin over the selected records.
-- Run it as an aggregation: asudf aggregate test.sales sum.total
-- or over a range:          asudf aggregate test.sales sum.total --where "amount BETWEEN 10 AND 50"

local function amount(rec)
    return rec['amount'] or 0
end

local function add(a, b)
    return a + b
end

function total(stream)
    return stream : map(amount) : reduce(add)
end
