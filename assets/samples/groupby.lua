-- Stream UDF: per region, how many sales and their total amount.
-- asudf aggregate test.sales groupby.by_region

local function add_sale(groups, rec)
    local region = rec['region'] or 'none'
    local group = groups[region] or map { count = 0, total = 0 }
    group['count'] = group['count'] + 1
    group['total'] = group['total'] + (rec['amount'] or 0)
    groups[region] = group
    return groups
end

local function add_groups(a, b)
    return map { count = a['count'] + b['count'], total = a['total'] + b['total'] }
end

local function merge(g1, g2)
    return map.merge(g1, g2, add_groups)
end

function by_region(stream)
    return stream : aggregate(map(), add_sale) : reduce(merge)
end
