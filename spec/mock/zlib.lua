-- One-shot gzip / zlib ("deflate" content coding) compression through
-- LuaJIT's FFI and the zlib that nginx itself links against.

local ffi = require "ffi"

ffi.cdef [[
typedef struct mock_z_stream_s {
  const unsigned char *next_in;
  unsigned int avail_in;
  unsigned long total_in;
  unsigned char *next_out;
  unsigned int avail_out;
  unsigned long total_out;
  const char *msg;
  void *state;
  void *zalloc;
  void *zfree;
  void *opaque;
  int data_type;
  unsigned long adler;
  unsigned long reserved;
} mock_z_stream;

const char *zlibVersion(void);
int deflateInit2_(mock_z_stream *strm, int level, int method, int windowBits,
                  int memLevel, int strategy, const char *version,
                  int stream_size);
int deflate(mock_z_stream *strm, int flush);
int deflateEnd(mock_z_stream *strm);
unsigned long deflateBound(mock_z_stream *strm, unsigned long sourceLen);
]]

local ok, z = pcall(ffi.load, "z")
if not ok then z = ffi.load("libz.so.1") end

local Z_FINISH, Z_STREAM_END, Z_DEFLATED = 4, 1, 8

local _M = {}

-- windowBits 15 = zlib wrapper (HTTP "deflate"), 31 = gzip wrapper.
local function compress(data, window_bits)
  local strm = ffi.new("mock_z_stream")
  local rc = z.deflateInit2_(strm, 6, Z_DEFLATED, window_bits, 8, 0,
                             z.zlibVersion(), ffi.sizeof(strm))
  if rc ~= 0 then error("deflateInit2 failed: " .. rc) end
  local cap = tonumber(z.deflateBound(strm, #data)) + 64
  local out = ffi.new("unsigned char[?]", cap)
  strm.next_in, strm.avail_in = data, #data
  strm.next_out, strm.avail_out = out, cap
  rc = z.deflate(strm, Z_FINISH)
  local n = tonumber(strm.total_out)
  z.deflateEnd(strm)
  if rc ~= Z_STREAM_END then error("deflate failed: " .. rc) end
  return ffi.string(out, n)
end

function _M.gzip(data) return compress(data, 31) end
function _M.deflate(data) return compress(data, 15) end

return _M
