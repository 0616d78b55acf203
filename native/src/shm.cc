// Pixelport shared-memory addon: POSIX shared-memory segments as SharedArrayBuffers, and a futex that
// works across processes.
//
// Written against the V8 API rather than N-API because Node 20's N-API cannot make a SharedArrayBuffer
// over external memory. The price is that the binary is tied to the Node major version it was built for,
// which is why it is built at install time (scripts/build-native.mjs) and never shipped prebuilt.
//
// Exports (see shm/addon.ts for the typed view):
//   create(name, byteLength, mode) -> SharedArrayBuffer   new segment, zero-filled, fully reserved
//   open(name) -> SharedArrayBuffer                       attach an existing segment (size from fstat)
//   unlink(name)                                          remove the name; mappings stay valid
//   futexWait(sab, byteOffset, expected, timeoutMs) -> 'ok' | 'not-equal' | 'timed-out'
//   futexWake(sab, byteOffset, count) -> number of waiters woken
//   futexWaitAsync(sab, byteOffset, expected, timeoutMs, callback) -> boolean   see futex_ring.cc
//   apiVersion                                            bumped when the exports change shape

#ifndef __linux__
#error "pixelport_shm needs Linux: shm_open, posix_fallocate and futex"
#endif

#include <node.h>
#include <uv.h>
#include <v8.h>

#include "futex_ring.h"

#ifdef V8_ENABLE_SANDBOX
// With the sandbox on, V8 refuses backing stores outside its cage: an mmap'd segment would crash at
// first use. Failing the build makes the provider report "unavailable" instead.
#error "pixelport_shm cannot work with the V8 sandbox enabled"
#endif

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>

#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

namespace {

constexpr int kApiVersion = 1;
// Largest length a JS number represents exactly; nothing near it can be mapped anyway.
constexpr double kMaxLength = 9007199254740991.0;

using v8::Context;
using v8::Exception;
using v8::FunctionCallbackInfo;
using v8::FunctionTemplate;
using v8::Integer;
using v8::Isolate;
using v8::Local;
using v8::Object;
using v8::SharedArrayBuffer;
using v8::String;
using v8::Value;

Local<String> Str(Isolate* isolate, const std::string& s) {
  return String::NewFromUtf8(isolate, s.c_str()).ToLocalChecked();
}

void SetProp(Isolate* isolate, Local<Object> obj, const char* key, Local<Value> value) {
  obj->Set(isolate->GetCurrentContext(), Str(isolate, key), value).Check();
}

// Throw an error shaped like Node's own system errors (code, errno, syscall, path), so JS callers
// match on err.code ('EEXIST', 'ENOSPC', ...) exactly as they do for fs errors.
void ThrowErrno(Isolate* isolate, int err, const char* syscall, const std::string& path) {
  char name[64];
  char text[256];
  uv_err_name_r(uv_translate_sys_error(err), name, sizeof name);
  uv_strerror_r(uv_translate_sys_error(err), text, sizeof text);
  std::string message = std::string(name) + ": " + text + ", " + syscall;
  if (!path.empty()) message += " '" + path + "'";
  Local<Object> error = Exception::Error(Str(isolate, message)).As<Object>();
  SetProp(isolate, error, "code", Str(isolate, name));
  SetProp(isolate, error, "errno", Integer::New(isolate, -err));
  SetProp(isolate, error, "syscall", Str(isolate, syscall));
  if (!path.empty()) SetProp(isolate, error, "path", Str(isolate, path));
  isolate->ThrowException(error);
}

// Argument errors carry Node's ERR_* codes so they read like errors from core APIs.
void ThrowArg(Isolate* isolate, bool range, const char* code, const std::string& message) {
  Local<Value> value = range ? Exception::RangeError(Str(isolate, message))
                             : Exception::TypeError(Str(isolate, message));
  SetProp(isolate, value.As<Object>(), "code", Str(isolate, code));
  isolate->ThrowException(value);
}

// A POSIX shm name: one leading slash, no other slash, short enough for a file name.
bool GetName(const FunctionCallbackInfo<Value>& args, int i, std::string* out) {
  Isolate* isolate = args.GetIsolate();
  if (!args[i]->IsString()) {
    ThrowArg(isolate, false, "ERR_INVALID_ARG_TYPE", "The segment name must be a string");
    return false;
  }
  String::Utf8Value utf8(isolate, args[i]);
  std::string name(*utf8, utf8.length());
  bool ok = name.size() >= 2 && name.size() <= NAME_MAX && name[0] == '/' &&
            name.find('/', 1) == std::string::npos && name.find('\0') == std::string::npos &&
            name != "/." && name != "/..";
  if (!ok) {
    ThrowArg(isolate, false, "ERR_INVALID_ARG_VALUE",
             "Invalid segment name '" + name + "': one leading '/', no other '/', at most " +
                 std::to_string(NAME_MAX) + " bytes");
    return false;
  }
  *out = name;
  return true;
}

bool GetInteger(const FunctionCallbackInfo<Value>& args, int i, const char* what, double min,
                double max, double* out) {
  Isolate* isolate = args.GetIsolate();
  if (!args[i]->IsNumber()) {
    ThrowArg(isolate, false, "ERR_INVALID_ARG_TYPE", std::string(what) + " must be a number");
    return false;
  }
  double v = args[i].As<v8::Number>()->Value();
  if (!std::isfinite(v) || std::floor(v) != v || v < min || v > max) {
    ThrowArg(isolate, true, "ERR_OUT_OF_RANGE",
             std::string(what) + " must be an integer in [" + std::to_string((int64_t)min) + ", " +
                 std::to_string((int64_t)max) + "]");
    return false;
  }
  *out = v;
  return true;
}

void Unmap(void* data, size_t length, void* /* deleter_data */) {
  munmap(data, length);
}

// Hand a mapping to V8. From here on the SharedArrayBuffer (and every clone posted to other threads)
// owns it: the deleter unmaps when the last one is collected.
Local<SharedArrayBuffer> Wrap(Isolate* isolate, void* data, size_t length) {
  std::unique_ptr<v8::BackingStore> store =
      SharedArrayBuffer::NewBackingStore(data, length, Unmap, nullptr);
  return SharedArrayBuffer::New(isolate, std::shared_ptr<v8::BackingStore>(std::move(store)));
}

void Create(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  std::string name;
  double length;
  double mode;
  if (!GetName(args, 0, &name)) return;
  if (!GetInteger(args, 1, "byteLength", 1, kMaxLength, &length)) return;
  if (!GetInteger(args, 2, "mode", 0, 0777, &mode)) return;

  // O_EXCL: never adopt (and so never resize) a segment someone else may have mapped.
  int fd = shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
  if (fd < 0) return ThrowErrno(isolate, errno, "shm_open", name);

  auto fail = [&](int err, const char* syscall) {
    close(fd);
    shm_unlink(name.c_str());
    ThrowErrno(isolate, err, syscall, name);
  };
  // The umask would strip the group bits of a deliberately shared mode.
  if (fchmod(fd, (mode_t)mode) != 0) return fail(errno, "fchmod");
  // Reserve every page now: on a full /dev/shm a plain ftruncate succeeds and the first write to an
  // unbacked page kills the process with SIGBUS. fallocate turns that into ENOSPC here.
  int rc;
  do {
    rc = posix_fallocate(fd, 0, (off_t)length);
  } while (rc == EINTR);
  if (rc != 0) return fail(rc, "posix_fallocate");
  void* data = mmap(nullptr, (size_t)length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (data == MAP_FAILED) return fail(errno, "mmap");
  close(fd);
  args.GetReturnValue().Set(Wrap(isolate, data, (size_t)length));
}

void Open(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  std::string name;
  if (!GetName(args, 0, &name)) return;
  int fd = shm_open(name.c_str(), O_RDWR | O_CLOEXEC, 0);
  if (fd < 0) return ThrowErrno(isolate, errno, "shm_open", name);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int err = errno;
    close(fd);
    return ThrowErrno(isolate, err, "fstat", name);
  }
  // Empty means a creator is between shm_open and fallocate (or it failed): nothing to map yet.
  if (st.st_size <= 0) {
    close(fd);
    return ThrowErrno(isolate, ENODATA, "fstat", name);
  }
  void* data = mmap(nullptr, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  int err = errno;
  close(fd);
  if (data == MAP_FAILED) return ThrowErrno(isolate, err, "mmap", name);
  args.GetReturnValue().Set(Wrap(isolate, data, (size_t)st.st_size));
}

void Unlink(const FunctionCallbackInfo<Value>& args) {
  std::string name;
  if (!GetName(args, 0, &name)) return;
  if (shm_unlink(name.c_str()) != 0) ThrowErrno(args.GetIsolate(), errno, "shm_unlink", name);
}

// The futex word: a 4-byte-aligned int32 inside a SharedArrayBuffer. The backing store is returned
// too so the memory stays alive for the whole wait, whatever other threads do with their references.
bool GetWord(const FunctionCallbackInfo<Value>& args, std::shared_ptr<v8::BackingStore>* store,
             int32_t** word) {
  Isolate* isolate = args.GetIsolate();
  if (!args[0]->IsSharedArrayBuffer()) {
    ThrowArg(isolate, false, "ERR_INVALID_ARG_TYPE", "The buffer must be a SharedArrayBuffer");
    return false;
  }
  *store = args[0].As<SharedArrayBuffer>()->GetBackingStore();
  size_t length = (*store)->ByteLength();
  double offset;
  if (length < 4) {
    ThrowArg(isolate, true, "ERR_OUT_OF_RANGE", "The buffer is smaller than one int32");
    return false;
  }
  if (!GetInteger(args, 1, "byteOffset", 0, (double)(length - 4), &offset)) return false;
  if ((size_t)offset % 4 != 0) {
    ThrowArg(isolate, true, "ERR_OUT_OF_RANGE", "byteOffset must be a multiple of 4");
    return false;
  }
  *word = reinterpret_cast<int32_t*>(static_cast<char*>((*store)->Data()) + (size_t)offset);
  return true;
}

// Not FUTEX_PRIVATE_FLAG: a private futex is keyed by (process, address) and would never see a waker
// in another process; a shared one is keyed by the underlying page, which both processes map.
long Futex(int32_t* word, int op, int32_t value, const struct timespec* timeout, uint32_t bitset) {
  return syscall(SYS_futex, word, op, value, timeout, nullptr, bitset);
}

void FutexWait(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  std::shared_ptr<v8::BackingStore> store;
  int32_t* word;
  if (!GetWord(args, &store, &word)) return;
  if (!args[2]->IsNumber()) {
    return ThrowArg(isolate, false, "ERR_INVALID_ARG_TYPE", "expected must be a number");
  }
  int32_t expected = args[2]->Int32Value(isolate->GetCurrentContext()).FromJust();
  // Like Atomics.wait: undefined, NaN and +Infinity wait forever; negative means do not block.
  double timeout = INFINITY;
  if (!args[3]->IsUndefined()) {
    if (!args[3]->IsNumber()) {
      return ThrowArg(isolate, false, "ERR_INVALID_ARG_TYPE", "timeoutMs must be a number");
    }
    timeout = args[3].As<v8::Number>()->Value();
    if (std::isnan(timeout)) timeout = INFINITY;
    if (timeout < 0) timeout = 0;
  }
  struct timespec deadline;
  const struct timespec* deadlinep = nullptr;
  if (std::isfinite(timeout)) {
    // An absolute CLOCK_MONOTONIC deadline (FUTEX_WAIT_BITSET) survives EINTR restarts unchanged.
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    double ns = (double)deadline.tv_nsec + timeout * 1e6;
    double secs = std::floor(ns / 1e9);
    deadline.tv_sec += (time_t)secs;
    deadline.tv_nsec = (long)(ns - secs * 1e9);
    deadlinep = &deadline;
  }
  const char* result = nullptr;
  while (result == nullptr) {
    if (Futex(word, FUTEX_WAIT_BITSET, expected, deadlinep, FUTEX_BITSET_MATCH_ANY) == 0) {
      result = "ok";
    } else if (errno == EAGAIN) {
      result = "not-equal";
    } else if (errno == ETIMEDOUT) {
      result = "timed-out";
    } else if (errno != EINTR) {
      return ThrowErrno(isolate, errno, "futex", "");
    }
  }
  args.GetReturnValue().Set(Str(isolate, result));
}

void FutexWake(const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  std::shared_ptr<v8::BackingStore> store;
  int32_t* word;
  if (!GetWord(args, &store, &word)) return;
  double count = INT_MAX;
  if (!args[2]->IsUndefined()) {
    if (args[2]->IsNumber() && args[2].As<v8::Number>()->Value() == INFINITY) {
      count = INT_MAX;
    } else if (!GetInteger(args, 2, "count", 0, INT_MAX, &count)) {
      return;
    }
  }
  long woken = Futex(word, FUTEX_WAKE, (int32_t)count, nullptr, 0);
  if (woken < 0) return ThrowErrno(isolate, errno, "futex", "");
  args.GetReturnValue().Set(Integer::New(isolate, (int32_t)woken));
}

void Export(Local<Object> exports, Local<Context> context, const char* name,
            v8::FunctionCallback fn) {
  Isolate* isolate = context->GetIsolate();
  Local<v8::Function> f = FunctionTemplate::New(isolate, fn)->GetFunction(context).ToLocalChecked();
  f->SetName(Str(isolate, name));
  exports->Set(context, Str(isolate, name), f).Check();
}

}  // namespace

// Context-aware: worker threads get their own instance of the exports. The functions keep no state.
NODE_MODULE_INIT() {
  Isolate* isolate = context->GetIsolate();
  Export(exports, context, "create", Create);
  Export(exports, context, "open", Open);
  Export(exports, context, "unlink", Unlink);
  Export(exports, context, "futexWait", FutexWait);
  Export(exports, context, "futexWake", FutexWake);
  Export(exports, context, "futexWaitAsync", pixelport::FutexWaitAsync);
  exports->Set(context, Str(isolate, "apiVersion"), Integer::New(isolate, kApiVersion)).Check();
}
