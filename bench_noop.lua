function noop(rec)
    return 1
end
