-- spec/fixtures/demo/sessions.json, the sessions `make demo`, the examples
-- and the cozmox command show: realistic and self-consistent, valid for
-- the API's rules, with nothing left as a placeholder.
local cozmox = require("cozmox")
local session = require("cozmox.session")
local util = require("support.util")

local json, time = cozmox.json, cozmox.time
local text = util.fixture("demo/sessions.json")
local DEMO = json.decode(text)
local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"
local E164 = "^%+[1-9]%d%d%d%d%d%d%d+$"
local REFERENCE_CREATED = time.parse("2023-11-07T05:31:56Z")   -- the API reference's example

local function utf8_length(s)
    local _, n = s:gsub("[^\128-\191]", "")
    return n
end

describe("demo sessions", function()
    it("are 6 sessions of 3 assistants, each status at least once, distinct ids and times", function()
        assert.equal(6, #DEMO)
        local ids, created, assistants, statuses = {}, {}, {}, {}
        for _, s in ipairs(DEMO) do
            assert.matches(UUID, s.id)
            assert.is_nil(ids[s.id], "duplicate id " .. s.id)
            ids[s.id] = true
            local t = assert(time.parse(s.createdAt))
            assert.is_nil(created[t], "two sessions created at " .. s.createdAt)
            created[t] = true
            assert.is_true(t > REFERENCE_CREATED)          -- listed before the reference's copies
            assistants[s.assistantId] = (assistants[s.assistantId] or 0) + 1
            statuses[s.status] = true
        end
        local n = 0
        for _ in pairs(assistants) do n = n + 1 end
        assert.equal(3, n)
        assert.same({ active = true, completed = true }, statuses)
    end)

    it("contain no placeholder of the API reference", function()
        assert.is_nil(text:find("<string>", 1, true))
        assert.is_nil(text:find("<unknown>", 1, true))
        assert.is_nil(text:find("123,", 1, true))
    end)

    for _, s in ipairs(DEMO) do
        describe(s.name, function()
            it("follows the API's rules for a session", function()
                assert.is_true(utf8_length(s.name) <= session.NAME_MAX)
                assert.is_true(session.STATUSES[s.status])
                assert.is_true(s.expirationSeconds >= session.EXPIRATION_MIN
                    and s.expirationSeconds <= session.EXPIRATION_MAX)
                assert.matches("^6f1c7c1e%-2b0a%-4f4e%-9a53%-0d6c2f6b1a77$", s.orgId)
                assert.matches(UUID, s.assistantId)
                assert.matches(UUID, s.phoneNumberId)
                -- every body field passes the client's own checks
                for name, check in pairs(session.BODY_FIELDS) do
                    if s[name] ~= nil then assert(check(s[name]), name) end
                end
            end)

            it("has a named assistant with its model, voice and transcriber, and a customer with a number", function()
                local a = s.assistant
                assert.matches("^%u%l+$", a.name)
                assert.matches("%S", a.model.provider)
                assert.matches("%S", a.model.model)
                assert.matches("%S", a.voice.provider)
                assert.matches("%S", a.voice.voiceId)
                assert.matches("%S", a.transcriber.provider)
                assert.matches(E164, s.customer.number)
                assert.matches("^%S+ .*%S$", s.customer.name)
                assert.equal(a.firstMessage:gsub("^Good %a+", ""), s.messages[1].message:gsub("^Good %a+", ""))
            end)

            it("is a conversation of 8 to 15 turns, alternating, timed from the start of the call", function()
                local msgs = s.messages
                assert.is_true(#msgs >= 8 and #msgs <= 15, #msgs .. " messages")
                local created_ms = time.parse(s.createdAt) * 1000
                local last = -1
                for i, m in ipairs(msgs) do
                    assert.equal(i % 2 == 1 and "assistant" or "user", m.role)
                    assert.matches("%a", m.message)
                    assert.is_nil(m.message:find("\n", 1, true))
                    assert.is_true(m.secondsFromStart > last, "secondsFromStart goes forward")
                    last = m.secondsFromStart
                    assert.equal(math.floor(created_ms + m.secondsFromStart * 1000 + 0.5), m.time)
                end
                assert.is_true(last < 600)                         -- the assistant's maxDurationSeconds default
                -- a finished call was last updated after its last message; an active one at it
                local updated_ms = time.parse(s.updatedAt) * 1000
                local last_ms = msgs[#msgs].time
                if s.status == "completed" then
                    assert.is_true(updated_ms > last_ms)
                else
                    assert.equal(last_ms, updated_ms)
                end
            end)

            it("mentions the customer's name in the call, and the assistant's", function()
                local all = {}
                for _, m in ipairs(s.messages) do all[#all + 1] = m.message end
                all = table.concat(all, " ")
                local first = s.customer.name:match("^(%S+)")
                assert.truthy(all:find(first, 1, true), first)
                assert.truthy(all:find(s.assistant.name, 1, true), s.assistant.name)
            end)
        end)
    end
end)
