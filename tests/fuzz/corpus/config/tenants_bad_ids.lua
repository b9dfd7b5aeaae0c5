tenants = { Demo = {}, ["-x"] = {}, ["a\0b"] = {}, [1] = {}, ok = 5 }
