package = "cozmox"
version = "0.1.0-1"
source = {
   url = "git+https://github.com/cozmox/cozmox-lua.git",
   tag = "v0.1.0",
}
description = {
   summary = "Lua client for the cozmox voice-AI API (libcurl C core, streaming JSON to native tables)",
   detailed = [[
      cozmox.session.get(id) fetches a session over libcurl and builds native
      Lua tables directly from the received bytes with a streaming JSON
      decoder written in C: exact 64-bit integers, arrays distinguishable from
      objects, cjson-compatible null, no intermediate body string.
   ]],
   homepage = "https://github.com/cozmox/cozmox-lua",
   license = "MIT",
}
dependencies = {
   "lua >= 5.1, < 5.5",
}
external_dependencies = {
   -- Only the library is probed: Debian/Ubuntu keep curl/curl.h under the
   -- multiarch include directory, which the compiler searches by itself
   -- but luarocks' header probe does not.
   CURL = {
      library = "curl",
   },
}
build = {
   type = "builtin",
   modules = {
      -- No libcurl: the codec, the response sink, escaping, the clock.
      ["cozmox.core"] = {
         sources = {
            "src/buffer.c", "src/clock.c", "src/core.c", "src/escape.c", "src/jdecode.c",
            "src/jencode.c", "src/keeper.c", "src/numconv.c", "src/sink.c",
         },
         libraries = { "z" },
      },
      -- The curl transport, loaded on the first request through curl.
      ["cozmox.curl"] = {
         sources = {
            "src/buffer.c", "src/curl.c", "src/easy.c", "src/jdecode.c", "src/jencode.c",
            "src/keeper.c", "src/multi.c", "src/numconv.c", "src/sink.c", "src/transfer.c",
         },
         libraries = { "curl", "z" },
         incdirs = { "$(CURL_INCDIR)" },
         libdirs = { "$(CURL_LIBDIR)" },
      },
      ["cozmox"] = "lua/cozmox/init.lua",
      ["cozmox.client"] = "lua/cozmox/client.lua",
      ["cozmox.errors"] = "lua/cozmox/errors.lua",
      ["cozmox.json"] = "lua/cozmox/json.lua",
      ["cozmox.options"] = "lua/cozmox/options.lua",
      ["cozmox.retry"] = "lua/cozmox/retry.lua",
      ["cozmox.session"] = "lua/cozmox/session.lua",
      ["cozmox.time"] = "lua/cozmox/time.lua",
      ["cozmox.transport"] = "lua/cozmox/transport.lua",
      ["cozmox.transport.curl"] = "lua/cozmox/transport/curl.lua",
      ["cozmox.transport.custom"] = "lua/cozmox/transport/custom.lua",
      ["cozmox.transport.nginx"] = "lua/cozmox/transport/nginx.lua",
      ["cozmox.types"] = "lua/cozmox/types.lua",
   },
   -- luarocks puts a wrapper in the tree's bin/ that runs the script with
   -- the Lua and module paths of that tree.
   install = {
      bin = { cozmox = "bin/cozmox" },
   },
   copy_directories = { "examples" },
}
