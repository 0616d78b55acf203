// Asynchronous cross-process futex waits on the calling thread's event loop, through io_uring
// (IORING_OP_FUTEX_WAIT, Linux 6.7+). See futex_ring.cc.
#pragma once

#include <v8.h>

namespace pixelport {

// futexWaitAsync(sab, byteOffset, expected, timeoutMs, callback) -> boolean
//   false: io_uring futex waits are unavailable here (old kernel, io_uring disabled, ring full); the
//   caller waits another way. true: callback(result) runs later on this thread's event loop, with
//   'ok' | 'not-equal' | 'timed-out' | 'error'.
void FutexWaitAsync(const v8::FunctionCallbackInfo<v8::Value>& args);

}  // namespace pixelport
