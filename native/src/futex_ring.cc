// Asynchronous cross-process futex waits that wake the event loop directly.
//
// A futex wait blocks its thread, so an asynchronous wait used to sleep in a helper thread that then woke
// the main thread: two wake-ups per change, twice the latency of a blocking wait. io_uring can wait on a
// futex itself (IORING_OP_FUTEX_WAIT, Linux 6.7+); the ring's own fd is readable while completions are
// queued, and libuv polls it, so a futexWake in any process wakes this thread's loop once, with no eventfd
// to signal and read on the way (two system calls fewer per wake). One ring per thread (each worker thread
// has its own loop), created on first use; where io_uring or its futex op is unavailable the first call
// reports it (false) and callers keep their helper threads.

#include "futex_ring.h"

#include <node.h>
#include <uv.h>

#include <linux/futex.h>
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <unordered_map>

namespace pixelport {
namespace {

using v8::Function;
using v8::FunctionCallbackInfo;
using v8::Global;
using v8::HandleScope;
using v8::Isolate;
using v8::Local;
using v8::SharedArrayBuffer;
using v8::String;
using v8::Value;

// Not in the 6.1 kernel headers the build may have; stable kernel ABI values.
constexpr uint8_t kOpFutexWait = 51;
constexpr uint32_t kFutex2SizeU32 = 0x02;  // shared (no FUTEX2_PRIVATE): wakers in other processes count
constexpr unsigned kEntries = 128;
// user_data of the linked timeouts: their completions carry nothing we need.
constexpr uint64_t kTimeoutTag = 0;

struct Pending {
  Global<Function> callback;
  std::shared_ptr<v8::BackingStore> memory;  // the futex word stays mapped for the whole wait
};

struct Ring {
  Isolate* isolate = nullptr;
  // The context callbacks run in (a uv callback has none entered).
  v8::Global<v8::Context> context;
  int fd = -1;
  uv_poll_t poll;
  io_uring_params params;
  char* sq = nullptr;
  char* cq = nullptr;
  size_t sqSize = 0;
  size_t cqSize = 0;
  io_uring_sqe* sqes = nullptr;
  uint64_t nextId = 1;
  std::unordered_map<uint64_t, Pending> pending;
  bool broken = false;

  unsigned* U (char* base, uint32_t off) { return reinterpret_cast<unsigned*>(base + off); }
};

thread_local Ring* ring = nullptr;
// Once a thread has found io_uring futex waits unavailable it does not try again.
thread_local bool unavailable = false;

int Setup (unsigned entries, io_uring_params* p) { return (int)syscall(__NR_io_uring_setup, entries, p); }
int Enter (int fd, unsigned submit) { return (int)syscall(__NR_io_uring_enter, fd, submit, 0, 0, nullptr, 0); }

const char* ResultOf (int res) {
  if (res == 0) return "ok";
  if (res == -EAGAIN) return "not-equal";
  if (res == -ECANCELED || res == -ETIME) return "timed-out";
  return "error";
}

void Drain (Ring* r) {
  Isolate* isolate = r->isolate;
  HandleScope scope(isolate);
  Local<v8::Context> context = r->context.Get(isolate);
  v8::Context::Scope contextScope(context);
  unsigned* head = r->U(r->cq, r->params.cq_off.head);
  unsigned* tail = r->U(r->cq, r->params.cq_off.tail);
  unsigned mask = *r->U(r->cq, r->params.cq_off.ring_mask);
  io_uring_cqe* cqes = reinterpret_cast<io_uring_cqe*>(r->cq + r->params.cq_off.cqes);
  for (;;) {
    unsigned h = *head;
    if (h == reinterpret_cast<std::atomic<unsigned>*>(tail)->load(std::memory_order_acquire)) break;
    io_uring_cqe cqe = cqes[h & mask];
    reinterpret_cast<std::atomic<unsigned>*>(head)->store(h + 1, std::memory_order_release);
    if (cqe.user_data == kTimeoutTag) continue;
    auto it = r->pending.find(cqe.user_data);
    if (it == r->pending.end()) continue;
    Local<Function> fn = it->second.callback.Get(isolate);
    r->pending.erase(it);
    Local<Value> argv[] = { String::NewFromUtf8(isolate, ResultOf(cqe.res)).ToLocalChecked() };
    // MakeCallback runs the microtasks the callback queues (the awaiting code), as any I/O callback does.
    node::MakeCallback(isolate, context->Global(), fn, 1, argv, { 0, 0 });
  }
}

void OnReadable (uv_poll_t* handle, int status, int events) {
  Drain(static_cast<Ring*>(handle->data));
}

void Teardown (void* arg) {
  Ring* r = static_cast<Ring*>(arg);
  if (ring == r) ring = nullptr;
  r->pending.clear();
  r->context.Reset();
  uv_poll_stop(&r->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&r->poll), [](uv_handle_t* handle) {
    Ring* r = static_cast<Ring*>(handle->data);
    // Closing the ring cancels whatever is still waiting in the kernel.
    if (r->sqes != nullptr) munmap(r->sqes, r->params.sq_entries * sizeof(io_uring_sqe));
    if (r->cq != nullptr && r->cq != r->sq) munmap(r->cq, r->cqSize);
    if (r->sq != nullptr) munmap(r->sq, r->sqSize);
    if (r->fd >= 0) close(r->fd);
    delete r;
  });
}

// The ring of this thread, or nullptr (and `unavailable`) when io_uring cannot be used here.
Ring* RingOf (Isolate* isolate) {
  if (ring != nullptr) return ring;
  if (unavailable) return nullptr;
  auto r = std::make_unique<Ring>();
  r->isolate = isolate;
  std::memset(&r->params, 0, sizeof r->params);
  r->fd = Setup(kEntries, &r->params);
  if (r->fd < 0) { unavailable = true; return nullptr; }
  io_uring_params& p = r->params;
  r->sqSize = p.sq_off.array + p.sq_entries * sizeof(unsigned);
  r->cqSize = p.cq_off.cqes + p.cq_entries * sizeof(io_uring_cqe);
  bool single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
  if (single) r->sqSize = r->cqSize = std::max(r->sqSize, r->cqSize);
  void* sq = mmap(nullptr, r->sqSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQ_RING);
  void* cq = single ? sq : mmap(nullptr, r->cqSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_CQ_RING);
  void* sqes = mmap(nullptr, p.sq_entries * sizeof(io_uring_sqe), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
  bool ok = sq != MAP_FAILED && cq != MAP_FAILED && sqes != MAP_FAILED;
  r->sq = sq == MAP_FAILED ? nullptr : static_cast<char*>(sq);
  r->cq = cq == MAP_FAILED ? nullptr : static_cast<char*>(cq);
  r->sqes = sqes == MAP_FAILED ? nullptr : static_cast<io_uring_sqe*>(sqes);
  uv_loop_t* loop = node::GetCurrentEventLoop(isolate);
  if (ok) ok = loop != nullptr && uv_poll_init(loop, &r->poll, r->fd) == 0;
  if (!ok) {
    if (r->sqes != nullptr) munmap(r->sqes, p.sq_entries * sizeof(io_uring_sqe));
    if (r->cq != nullptr && r->cq != r->sq) munmap(r->cq, r->cqSize);
    if (r->sq != nullptr) munmap(r->sq, r->sqSize);
    close(r->fd);
    unavailable = true;
    return nullptr;
  }
  r->poll.data = r.get();
  r->context.Reset(isolate, isolate->GetCurrentContext());
  uv_poll_start(&r->poll, UV_READABLE, OnReadable);
  // A pending wait does not keep the process alive by itself (the attach socket does, while one waits).
  uv_unref(reinterpret_cast<uv_handle_t*>(&r->poll));
  ring = r.release();
  node::AddEnvironmentCleanupHook(isolate, Teardown, ring);
  return ring;
}

io_uring_sqe* NextSqe (Ring* r, unsigned* tail) {
  io_uring_sqe* sqe = &r->sqes[*tail & *r->U(r->sq, r->params.sq_off.ring_mask)];
  std::memset(sqe, 0, sizeof *sqe);
  unsigned* array = r->U(r->sq, r->params.sq_off.array);
  array[*tail & *r->U(r->sq, r->params.sq_off.ring_mask)] = *tail & *r->U(r->sq, r->params.sq_off.ring_mask);
  (*tail)++;
  return sqe;
}

}  // namespace

void FutexWaitAsync (const FunctionCallbackInfo<Value>& args) {
  Isolate* isolate = args.GetIsolate();
  args.GetReturnValue().Set(false);
  if (!args[0]->IsSharedArrayBuffer() || !args[1]->IsNumber() || !args[2]->IsNumber() || !args[4]->IsFunction()) {
    isolate->ThrowException(v8::Exception::TypeError(String::NewFromUtf8(isolate,
      "futexWaitAsync(sab, byteOffset, expected, timeoutMs, callback)").ToLocalChecked()));
    return;
  }
  std::shared_ptr<v8::BackingStore> memory = args[0].As<SharedArrayBuffer>()->GetBackingStore();
  double offset = args[1].As<v8::Number>()->Value();
  if (!(offset >= 0) || offset + 4 > (double)memory->ByteLength() || std::fmod(offset, 4) != 0) {
    isolate->ThrowException(v8::Exception::RangeError(String::NewFromUtf8(isolate,
      "byteOffset must be a multiple of 4 inside the buffer").ToLocalChecked()));
    return;
  }
  int32_t expected = args[2]->Int32Value(isolate->GetCurrentContext()).FromJust();
  double timeout = args[3]->IsNumber() ? args[3].As<v8::Number>()->Value() : INFINITY;
  Ring* r = RingOf(isolate);
  // Room for this wait and its timeout in both rings (completions are twice the submissions here).
  if (r == nullptr || r->broken || r->pending.size() + 1 > kEntries / 2 - 1) return;

  uint64_t id = r->nextId++;
  if (id == kTimeoutTag) id = r->nextId++;
  unsigned* tailp = r->U(r->sq, r->params.sq_off.tail);
  unsigned tail = *tailp;
  io_uring_sqe* wait = NextSqe(r, &tail);
  wait->opcode = kOpFutexWait;
  wait->fd = kFutex2SizeU32;
  wait->addr = reinterpret_cast<uint64_t>(static_cast<char*>(memory->Data()) + (size_t)offset);
  wait->addr2 = (uint64_t)(uint32_t)expected;
  wait->addr3 = FUTEX_BITSET_MATCH_ANY;
  wait->user_data = id;
  unsigned submit = 1;
  __kernel_timespec ts;
  if (std::isfinite(timeout)) {
    if (timeout < 0) timeout = 0;
    wait->flags |= IOSQE_IO_LINK;
    ts.tv_sec = (int64_t)(timeout / 1000);
    ts.tv_nsec = (int64_t)((timeout - (double)ts.tv_sec * 1000) * 1e6);
    io_uring_sqe* limit = NextSqe(r, &tail);
    limit->opcode = IORING_OP_LINK_TIMEOUT;
    limit->addr = reinterpret_cast<uint64_t>(&ts);
    limit->len = 1;
    limit->user_data = kTimeoutTag;
    submit = 2;
  }
  reinterpret_cast<std::atomic<unsigned>*>(tailp)->store(tail, std::memory_order_release);
  int done = Enter(r->fd, submit);
  if (done != (int)submit) {
    // Should not happen with room checked; if it does, stop using the ring (what was queued completes).
    r->broken = true;
    if (done <= 0) return;
  }
  Pending& p = r->pending[id];
  p.callback.Reset(isolate, args[4].As<Function>());
  p.memory = std::move(memory);
  args.GetReturnValue().Set(true);
}

}  // namespace pixelport
