-- golapis.shdict: the FFI methods of ngx.shared.DICT and golapis.shared's
-- functions, on the shared dicts of src/api/gl_lua_shdict.c.
--
-- Not a module to require: gl_lua_shdict_inject() runs this chunk
-- once per Lua state with the methods table to fill, the default dict's
-- zone table (or nil) and its name; it returns golapis.shared's functions.
-- Its chunk name is "=ngx.shared": an error raised here (a bad argument
-- in an FFI call) says "ngx.shared:LINE:", LINE in this file.

local methods, default_zone, default_name = ...

local ffi = require "ffi"
local C = ffi.C
local ffi_str = ffi.string
local ffi_cast = ffi.cast
local type = type
local tostring = tostring
local tonumber = tonumber
local error = error

ffi.cdef [[
typedef struct {
    int            type;
    int            flags;
    double         num;
    const char    *str;
    size_t         len;
    int            stale;
} gl_ffi_shdict_val_t;
int gl_ffi_shdict_get(void *d, const char *key, size_t key_len,
    int stale_ok, gl_ffi_shdict_val_t *out);
int gl_ffi_shdict_store(void *d, int op, const char *key,
    size_t key_len, int type, const char *str, size_t len, double num,
    long exptime, int flags, int *forcible);
int gl_ffi_shdict_incr(void *d, const char *key, size_t key_len,
    double *value, int has_init, double init, long init_ttl,
    int *forcible);
void gl_ffi_shdict_flush_all(void *d);
int gl_ffi_shdict_ttl(void *d, const char *key, size_t key_len,
    double *ttl);
int gl_ffi_shdict_expire(void *d, const char *key, size_t key_len,
    long exptime);
size_t gl_ffi_shdict_capacity(void *d);
size_t gl_ffi_shdict_free_space(void *d);
]]

local c_get = C.gl_ffi_shdict_get
-- named as lua-resty-core's, which LuaJIT's conversion errors name
local ngx_lua_ffi_shdict_store = C.gl_ffi_shdict_store
local c_incr = C.gl_ffi_shdict_incr
local c_ttl = C.gl_ffi_shdict_ttl
local c_expire = C.gl_ffi_shdict_expire

local dict_pp = ffi.typeof("void **")
local val = ffi.new("gl_ffi_shdict_val_t")
local num = ffi.new("double[1]")
local forcible = ffi.new("int[1]")

local errors = {
    [-1] = "not found", [-2] = "exists", [-3] = "no memory",
    [-4] = "not a number", [-5] = "value not a list",
    [-6] = "value is a list", [-7] = "bad value type",
    [-8] = "attempt to add or replace nil values",
    [-9] = "empty key", [-10] = "key too long",
}

-- the dict of a zone table; errors point at the method's caller
local function zone_dict(zone)
    if type(zone) ~= "table" then
        error("bad \"zone\" argument", 3)
    end
    local ud = zone[1]
    if type(ud) ~= "userdata" then
        error("bad \"zone\" argument", 3)
    end
    local d = ffi_cast(dict_pp, ud)[0]
    if d == nil then
        error("bad \"zone\" argument", 3)
    end
    return d
end

-- the key as a string and its length, or nil and the message
local function key_of(key)
    if key == nil then
        return nil, "nil key"
    end
    if type(key) ~= "string" then
        key = tostring(key)
    end
    local n = #key
    if n == 0 then
        return nil, "empty key"
    end
    if n > 65535 then
        return nil, "key too long"
    end
    return key, n
end

-- set, add, replace and their safe_ forms: op is gl_shdict.h's
local function store(zone, op, key, value, exptime, flags)
    local d = zone_dict(zone)
    if not exptime then
        exptime = 0
    elseif exptime < 0 then
        error("bad \"exptime\" argument", 2)
    end
    local k, n = key_of(key)
    if not k then
        return nil, n
    end
    local vt, str, len, x = type(value), nil, 0, 0
    if vt == "string" then
        vt, str, len = 4, value, #value
    elseif vt == "number" then
        vt, x = 3, value
    elseif vt == "nil" then
        vt = 0
    elseif vt == "boolean" then
        vt, x = 1, value and 1 or 0
    else
        return nil, "bad value type"
    end
    local rc = ngx_lua_ffi_shdict_store(d, op, k, n, vt, str, len, x,
                                        exptime * 1000, flags or 0,
                                        forcible)
    if rc == 0 then
        return true, nil, forcible[0] == 1
    end
    return false, errors[rc], forcible[0] == 1
end

local function set(zone, key, value, exptime, flags)
    return store(zone, 0, key, value, exptime, flags)
end

local function incr(zone, key, value, init, init_ttl)
    local d = zone_dict(zone)
    local k, n = key_of(key)
    if not k then
        return nil, n
    end
    if type(value) ~= "number" then
        value = tonumber(value)
    end
    num[0] = value
    if init then
        local t = type(init)
        if t ~= "number" then
            init = tonumber(init)
            if not init then
                error("bad init arg: number expected, got " .. t, 2)
            end
        end
    end
    if init_ttl == nil then
        init_ttl = 0
    else
        local t = type(init_ttl)
        if t ~= "number" then
            init_ttl = tonumber(init_ttl)
            if not init_ttl then
                error("bad init_ttl arg: number expected, got " .. t,
                      2)
            end
        end
        if init_ttl < 0 then
            error("bad \"init_ttl\" argument", 2)
        end
        if not init then
            error("must provide \"init\" when providing "
                  .. "\"init_ttl\"", 2)
        end
    end
    local rc = c_incr(d, k, n, num, init and 1 or 0, init or 0,
                      init_ttl * 1000, forcible)
    if rc ~= 0 then
        return nil, errors[rc]
    end
    if not init then
        return num[0]
    end
    return num[0], nil, forcible[0] == 1
end

-- get and get_stale: the value, and its flags unless 0
local function get(zone, key, stale)
    local d = zone_dict(zone)
    local k, n = key_of(key)
    if not k then
        return nil, n
    end
    local rc = c_get(d, k, n, stale, val)
    if rc ~= 0 then
        if rc == -6 then
            return nil, "value is a list"
        end
        error("failed to get the key")
    end
    local vt, v = val.type
    if vt == 3 then
        v = val.num
    elseif vt == 4 then
        v = ffi_str(val.str, val.len)
    elseif vt == 1 then
        v = val.num ~= 0
    elseif vt == 0 then
        return nil
    else
        error("unknown value type: " .. vt)
    end
    local flags = val.flags
    if stale == 0 then
        if flags ~= 0 then
            return v, flags
        end
        return v
    end
    return v, flags ~= 0 and flags or nil, val.stale == 1
end

methods.get = function(zone, key)
    return get(zone, key, 0)
end

methods.get_stale = function(zone, key)
    return get(zone, key, 1)
end

methods.set = set

methods.safe_set = function(zone, key, value, exptime, flags)
    return store(zone, 4, key, value, exptime, flags)
end

methods.add = function(zone, key, value, exptime, flags)
    return store(zone, 1, key, value, exptime, flags)
end

methods.safe_add = function(zone, key, value, exptime, flags)
    return store(zone, 5, key, value, exptime, flags)
end

methods.replace = function(zone, key, value, exptime, flags)
    return store(zone, 2, key, value, exptime, flags)
end

methods.delete = function(zone, key)
    return store(zone, 0, key, nil)
end

methods.incr = incr

methods.flush_all = function(zone)
    C.gl_ffi_shdict_flush_all(zone_dict(zone))
end

local ttl_out = ffi.new("double[1]")

methods.ttl = function(zone, key)
    local d = zone_dict(zone)
    local k, n = key_of(key)
    if not k then
        return nil, n
    end
    if c_ttl(d, k, n, ttl_out) ~= 0 then
        return nil, "not found"
    end
    return ttl_out[0]
end

methods.expire = function(zone, key, exptime)
    local d = zone_dict(zone)
    if not exptime then
        error("bad \"exptime\" argument", 2)
    end
    local k, n = key_of(key)
    if not k then
        return nil, n
    end
    if c_expire(d, k, n, exptime * 1000) ~= 0 then
        return nil, "not found"
    end
    return true
end

methods.capacity = function(zone)
    return tonumber(C.gl_ffi_shdict_capacity(zone_dict(zone)))
end

methods.free_space = function(zone)
    return tonumber(C.gl_ffi_shdict_free_space(zone_dict(zone)))
end

-- golapis.shared.get/set/incr: the default dict's methods
if not default_zone then
    local function missing()
        error("no shared dict \"" .. default_name .. "\"", 2)
    end
    return { get = missing, set = missing, incr = missing }
end

return {
    get = function(key)
        return get(default_zone, key, 0)
    end,
    set = function(key, value, exptime, flags)
        return store(default_zone, 0, key, value, exptime, flags)
    end,
    incr = function(key, value, init, init_ttl)
        return incr(default_zone, key, value, init, init_ttl)
    end,
}
