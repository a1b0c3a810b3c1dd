# cozmox-lua -- build, test and demo.
#
#   make                         build the C core for Lua 5.4
#   make LUA_VERSION=5.1|5.3     build for another Lua (LUA=luajit for LuaJIT)
#   make install PREFIX=/tree    install into the standard Lua tree
#   make test | make demo | make clean

LUA_VERSION ?= 5.4
ifeq ($(LUA),luajit)
  LUA_PC    ?= luajit
  LUA_ABI   := 5.1
  LUA_BIN   ?= luajit
else
  LUA_PC    ?= lua$(LUA_VERSION)
  LUA_ABI   := $(LUA_VERSION)
  LUA_BIN   ?= lua$(LUA_VERSION)
endif
TAG       := $(if $(filter luajit,$(LUA)),luajit,lua$(LUA_VERSION))

PREFIX    ?= /usr/local
LUA_LMOD  ?= $(PREFIX)/share/lua/$(LUA_ABI)
LUA_CMOD  ?= $(PREFIX)/lib/lua/$(LUA_ABI)

CC        ?= cc
OPT       ?= -O2
CFLAGS    ?= $(OPT) -g
WARN      := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
PKG_CFLAGS = $(shell pkg-config --cflags $(LUA_PC) libcurl 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs libcurl 2>/dev/null)
ALL_CFLAGS = -std=gnu99 -fPIC $(WARN) $(CFLAGS) $(PKG_CFLAGS)
LDFLAGS   ?=
LIBFLAG   ?= -shared

SRCS      := $(wildcard src/*.c)
HDRS      := $(wildcard src/*.h)
BUILD     := build/$(TAG)
OBJS      := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(SRCS))
CORE      := $(BUILD)/cozmox/core.so
LUA_SRCS  := $(wildcard lua/cozmox/*.lua)

# Where specs, examples and benchmarks find the in-tree modules.
RUN_ENV    = LUA_PATH="$(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/spec/?.lua;;" \
             LUA_CPATH="$(CURDIR)/$(BUILD)/?.so;;"

.PHONY: all deps install uninstall test demo clean

all: $(CORE)

$(BUILD)/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(CORE): $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) $(LDFLAGS) -o $@ $(OBJS) $(PKG_LIBS)

deps:
	@bash scripts/deps.sh

install: $(CORE)
	install -d $(DESTDIR)$(LUA_LMOD)/cozmox $(DESTDIR)$(LUA_CMOD)/cozmox
	install -m 0644 $(LUA_SRCS) $(DESTDIR)$(LUA_LMOD)/cozmox/
	install -m 0755 $(CORE) $(DESTDIR)$(LUA_CMOD)/cozmox/core.so

uninstall:
	rm -rf $(DESTDIR)$(LUA_LMOD)/cozmox $(DESTDIR)$(LUA_CMOD)/cozmox

test: deps
	@$(MAKE) -s --no-print-directory all
	@$(RUN_ENV) LUA_BIN=$(LUA_BIN) bash scripts/with-mock.sh bash scripts/run-specs.sh $(LUA_BIN)

demo: deps
	@$(MAKE) -s --no-print-directory all
	@$(RUN_ENV) bash scripts/with-mock.sh $(LUA_BIN) examples/get_session.lua 3f6c2f7e-5a1b-4c2d-9e8f-0a1b2c3d4e5f

clean:
	rm -rf build
