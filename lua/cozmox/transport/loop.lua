--- cozmox.transport.loop: curl driven by the host's event loop (see
--  cozmox.transport for the contract, cozmox.loop for the adapters and
--  the `wait` contract).
--
-- Made by the client when cozmox.new gets `loop = { wait = ... }`.  One
-- curl multi handle per client (the C driver, src/driver.c) runs every
-- request of every coroutine that uses the client; each request gets its
-- own easy handle from the driver's pool (duplicated from one template
-- handle: TLS verification, gzip, HTTP/2 with PIPEWAIT, limits), its own
-- response sink and its own result record, as with the blocking curl
-- transport.  The client's connections live in its multi handle's own
-- cache (kept alive between its requests, closed with the client).
--
-- Waiting happens here, in Lua, outside every C frame: the driver says
-- which descriptors curl wants watched and when its timer is due, the
-- adapter's wait(fds, timeout) suspends the calling coroutine until one of
-- them is ready, and the driver advances curl.  Several coroutines may use
-- one client at once; at most one of them at a time (the one "driving")
-- waits on curl's descriptors -- two waits must never register the same
-- descriptor with the host loop.  The others wait on their transfer's own
-- wake-up descriptor, which the driver makes readable when the transfer
-- finished.  A driving coroutine whose transfers are done wakes the
-- coroutines still waiting; the first to run drives next.  A driver
-- that is gone (dead coroutine, collected) or stuck (its wait did not
-- return in time) is replaced by the next waiter that wakes.
--
-- State kept on the transport is the driver's, never a request's: the C
-- driver, which coroutine drives, until when its wait should last, and
-- whether the client was closed.
local core = require("cozmox.core")
local transport = require("cozmox.transport")
local curl_transport = require("cozmox.transport.curl")

local setmetatable, type, ipairs, pcall, error = setmetatable, type, ipairs, pcall, error
local co_running, co_status = coroutine.running, coroutine.status
local math_min, math_max, huge = math.min, math.max, math.huge
local now, failure = core.now, transport.failure

local _M = {}

-- Lua 5.1 (not LuaJIT) cannot yield through pcall: there the adapter's
-- wait is called unprotected (an error in it still leaves nothing
-- behind that the garbage collector cannot clean up).
local PCALL_YIELDS = _VERSION ~= "Lua 5.1" or type(jit) == "table"

-- The longest single wait of the driving coroutine (curl always has a
-- timer while transfers run; this only bounds a surprise).
local MAX_WAIT = 1
-- How late past the end of its wait (or past a signal from another
-- coroutine) the driving coroutine may come back before a waiting one
-- takes it for stuck and drives in its place.
local GUARD = 0.25
-- A waiting coroutine wakes no later than this past its own transfers'
-- deadline or the driving coroutine's expected return.
local TICK = 0.05

_M.NOT_IN_COROUTINE = "a client with a loop adapter must be called from inside a coroutine "
    .. "that the host's loop resumes (it suspends that coroutine while the request runs); "
    .. "wrap the call, e.g. coroutine.wrap(function() ... end)()"
local CLOSED = "the client was closed during the call"
-- (curl's code for a transfer the driver ended when the client closed)
local ABORTED = 42

local Loop = {}
Loop.__index = Loop

local secrets = setmetatable({}, { __mode = "k" })

function _M.new(s, secret, adapter)
    local t = setmetatable({ s = s, wait = adapter.wait,
        -- which coroutine drives (weak: a dropped coroutine is not kept)
        driving = setmetatable({}, { __mode = "v" }), wait_until = huge }, Loop)
    secrets[t] = secret
    return t
end

local function current()
    local co, main = co_running()
    if co == nil or main then return nil end
    return co
end

-- The driver, made on first use; nil, message when curl cannot make one.
function Loop:_driver()
    local d = self.d
    if not d then
        local err
        d, err = curl_transport.module().driver(curl_transport.handle(self.s, secrets[self]))
        if not d then return nil, err end
        self.d = d
    end
    return d
end

local function call_wait(wait, fds, timeout)
    if PCALL_YIELDS then return pcall(wait, fds, timeout) end
    return true, wait(fds, timeout)
end

-- One wait of coroutine co for its transfers xs (deadlines ds): as the
-- driving coroutine on curl's descriptors, or else on its own wake-up
-- descriptors.  Returns true, or false and the adapter's error.
function Loop:_await(co, d, xs, ds)
    local driving = self.driving
    local drv = driving[1]
    if drv ~= co and (drv == nil or co_status(drv) == "dead" or now() > self.wait_until) then
        driving[1], drv = co, co
    end
    if self.closed and drv == co then -- closed while nobody was inside a wait on curl's descriptors
        d:close()
        return true
    end
    if drv == co then
        local fds, timeout = d:watch()
        if timeout == nil or timeout > MAX_WAIT then timeout = MAX_WAIT end
        -- its own descriptor too: close() and new requests of other
        -- coroutines wake it through that
        fds[#fds + 1] = { fd = xs[1]:fd(), events = "r" }
        driving[2] = xs[1]
        self.wait_until = now() + timeout + GUARD
        local ok, ready = call_wait(self.wait, fds, timeout)
        if not ok then return false, ready end
        for _, x in ipairs(xs) do x:drain() end
        if self.closed then
            d:close()
        elseif driving[1] == co then -- (else another took over meanwhile)
            local stepped, err = pcall(d.step, d, ready)
            if not stepped then return false, err end
        end
        return true
    end
    local fds, soonest = {}, huge
    for k, x in ipairs(xs) do
        fds[k] = { fd = x:fd(), events = "r" }
        soonest = math_min(soonest, ds[k])
    end
    -- until its transfers' deadline (the driving coroutine's step ends
    -- them then), or the driving coroutine's wait should have returned
    -- (then it may be stuck, and this one drives); once past the
    -- deadline, only the latter
    local t = now()
    local wake_at = self.wait_until
    if soonest > t then wake_at = math_min(wake_at, soonest) end
    local ok, err = call_wait(self.wait, fds, math_min(math_max(wake_at + TICK - t, 0.01), MAX_WAIT))
    if not ok then return false, err end
    for _, x in ipairs(xs) do x:drain() end
    return true
end

-- Leave: hand the driving to the coroutines still waiting (all are
-- woken: the first to run takes it, so one that was dropped cannot hold
-- the others up).
function Loop:_leave(co)
    if self.driving[1] == co then
        self.driving[1] = nil
        self.wait_until = huge
        if not self.closed then self.d:handoff(true) end
    end
end

function Loop:perform_many(reqs, concurrency, want_meta)
    local out, n = {}, #reqs
    local co = current()
    if not co or self.closed then
        for i = 1, n do
            out[i] = co and failure("closed", CLOSED, 0, true) or failure("config", _M.NOT_IN_COROUTINE, 2)
        end
        return out
    end
    local d, derr = self:_driver()
    if not d then
        for i = 1, n do out[i] = failure("network", derr, 7, false) end
        return out
    end
    local xs, ds, at = {}, {}, {} -- running tickets, their deadlines, their index in reqs
    local next_i = 1
    concurrency = math_max(1, concurrency or 8)
    local function give_up(err)
        for _, x in ipairs(xs) do x:cancel() end
        self:_leave(co)
        error(err, 0)
    end
    while true do
        local started = false
        while next_i <= n and #xs < concurrency do
            if self.closed then -- (closed by another coroutine meanwhile)
                for i = next_i, n do out[i] = failure("closed", CLOSED, 0, true) end
                next_i = n + 1
                break
            end
            local ok, x, msg, kind, code = pcall(d.start, d, reqs[next_i], want_meta)
            if not ok then give_up(x) end
            if x then
                local k = #xs + 1
                xs[k], ds[k], at[k] = x, reqs[next_i].deadline or (now() + 60), next_i
                started = true
            else -- (no descriptor or no memory for it: that request fails)
                out[next_i] = failure(kind, msg, code, false)
            end
            next_i = next_i + 1
        end
        -- A coroutine waiting on curl's descriptors does not know of the
        -- new transfers: wake it, so they start now.
        -- A driving coroutine that does not come back soon after is stuck.
        local drv = self.driving
        if started and drv[1] ~= nil and drv[1] ~= co and drv[2] ~= nil then
            drv[2]:signal()
            self.wait_until = math_min(self.wait_until, now() + GUARD)
        end
        if #xs == 0 then break end
        local ok, err = self:_await(co, d, xs, ds)
        if not ok then give_up(err) end
        for k = #xs, 1, -1 do
            if xs[k]:done() then
                local rec = xs[k]:finish()
                if rec.code == ABORTED and self.closed then rec = failure("closed", CLOSED, 0, rec.started) end
                out[at[k]] = rec
                table.remove(xs, k)
                table.remove(ds, k)
                table.remove(at, k)
            end
        end
    end
    self:_leave(co)
    return out
end

function Loop:perform(req, want_meta)
    return self:perform_many({ req }, 1, want_meta)[1]
end

--- Every transfer in flight ends with a "closed" failure.  When another
--  coroutine is inside the adapter's wait on curl's descriptors, it is
--  woken and closes the driver itself once its wait returned (the host
--  loop never watches a descriptor curl has closed).
function Loop:close()
    if self.closed then return end
    self.closed = true
    local d = self.d
    if not d then return end
    local drv = self.driving[1]
    if drv ~= nil and drv ~= current() and co_status(drv) == "suspended" and d:running() > 0 then
        d:handoff(true)
    else
        d:close()
    end
end

--- The sleep between retries of a loop-driven client: through the
--  adapter, so it never blocks the host.
function _M.sleep_with(wait)
    return function(seconds)
        if current() then wait({}, seconds) end
    end
end

return _M
