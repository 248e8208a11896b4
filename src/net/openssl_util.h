// Small helpers around OpenSSL shared by the net layer. Internal.
#pragma once

#include <openssl/err.h>

#include <string>

namespace entrysync::net {

// Pops this thread's OpenSSL error queue and returns its oldest reason as
// one short line ("wrong version number"); `fallback` when the queue is
// empty. Leaves the queue empty.
inline std::string TakeOpenSslError(const char* fallback = "unknown error") {
  unsigned long first = ERR_get_error();
  ERR_clear_error();
  if (first == 0) return fallback;
  const char* reason = ERR_reason_error_string(first);
  if (reason != nullptr) return reason;
  char buf[256];
  ERR_error_string_n(first, buf, sizeof buf);
  return buf;
}

}  // namespace entrysync::net
