# The shared-memory addon: POSIX shm segments as SharedArrayBuffers, plus a cross-process futex.
# Built at install time by scripts/build-native.mjs; see native/README.md for why it uses the V8 API.
{
  "targets": [
    {
      "target_name": "pixelport_shm",
      "sources": ["src/shm.cc", "src/futex_ring.cc"],
      "cflags_cc": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-cast-function-type"],
      "conditions": [
        ["OS=='linux'", {
          # nodelete: an addon loaded only by a worker thread would otherwise be dlclose()d when that
          # worker exits, and a later GC of a buffer made there would call a deleter that is gone.
          "ldflags": ["-Wl,-z,nodelete"],
          "libraries": ["-lrt"]
        }]
      ]
    }
  ]
}
