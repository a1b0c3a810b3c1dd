-- luacheck (Debian lua-check) configuration, used by `make lint`.
--
-- luacheck's defaults -- 120 columns, unused and shadowed variables,
-- unused arguments -- over every Lua file; what differs from place to
-- place is only which globals the code may use.  No file is exempted.

-- The library runs on Lua 5.1, 5.2, 5.3, 5.4 and LuaJIT and feature-tests
-- what differs (math.type, table.unpack, jit...): the union of their
-- standard globals.  That the shipped code loads on 5.1 is checked by
-- `make test-all`, not here.
std = "max"

-- Inside nginx the library looks for the `ngx` table (the cosocket
-- transport, ngx.sleep for retries).
-- Inside Neovim the luv adapter resumes through vim.schedule.
files["lua"] = { read_globals = { "ngx", "vim" } }

-- Code that only ever runs inside Neovim (the `vim` API table).
files["examples/neovim"] = { globals = { "vim" } }
files["spec/hosts/neovim_run.lua"] = { globals = { "vim" } }
files["spec/hosts/neovim_example.lua"] = { globals = { "vim" } }

-- Code that only ever runs inside nginx's LuaJIT (lua-nginx-module).
files["spec/mock"] = { std = "ngx_lua" }
files["spec/nginx"] = { std = "ngx_lua" }
files["examples/nginx"] = { std = "ngx_lua" }

-- Specs: busted's globals (describe, it, assert, setup, pending...).
files["spec/**/*_spec.lua"] = { std = "+busted" }

-- Code that only ever runs inside HAProxy (its Lua API is the global `core`).
files["spec/haproxy"] = { read_globals = { "core" } }
files["examples/haproxy"] = { read_globals = { "core" } }
