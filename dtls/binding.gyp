{
  "targets": [
    {
      "target_name": "henge_dtls",
      "sources": ["native/henge_dtls.c"],
      "cflags": ["-std=c99", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden"],
      "defines": ["NAPI_VERSION=8", "_POSIX_C_SOURCE=200809L"]
    }
  ]
}
