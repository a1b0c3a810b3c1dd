-- The conversation the transcript examples are run on (examples/nginx,
-- examples/haproxy), and the text they must serve for it.
local _M = {}

_M.MESSAGES = {
    { role = "assistant", message = "Hello! How can I help?", time = 1700000000000, secondsFromStart = 0.4 },
    { role = "user", message = "I'd like to move my\nappointment.", time = 1700000003000, secondsFromStart = 3.1 },
    { role = "assistant", message = "Sure: which day suits you?", time = 1700000065000, secondsFromStart = 65 },
}

--- GET /transcript/<id>
_M.TIMED = "[00:00] assistant: Hello! How can I help?\n"
    .. "[00:03] user: I'd like to move my appointment.\n"
    .. "[01:05] assistant: Sure: which day suits you?\n"

--- GET /transcript/<id>?timestamps=0
_M.PLAIN = "assistant: Hello! How can I help?\nuser: I'd like to move my appointment.\n"
    .. "assistant: Sure: which day suits you?\n"

return _M
