#include "net/accept_limits.h"

#include <algorithm>
#include <cerrno>

namespace entrysync::net {

bool IsPerConnectionAcceptError(const std::error_code& ec) {
  if (ec.category() != std::system_category() && ec.category() != std::generic_category()) return false;
  switch (ec.value()) {
    case ECONNABORTED:
    case ECONNRESET:
    case EINTR:
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
    case EPERM:  // a firewall rule refused this connection
    case EPROTO:
    case ENETDOWN:
    case ENOPROTOOPT:
    case EHOSTDOWN:
#ifdef ENONET
    case ENONET:
#endif
    case EHOSTUNREACH:
    case EOPNOTSUPP:
    case ENETUNREACH:
      return true;
    default:
      return false;
  }
}

AcceptBackoff::AcceptBackoff(std::chrono::milliseconds first, std::chrono::milliseconds max)
    : first_(std::max(first, std::chrono::milliseconds(1))), max_(std::max(max, first_)), next_(first_) {}

std::chrono::milliseconds AcceptBackoff::Next() {
  std::chrono::milliseconds now = next_;
  next_ = std::min(max_, next_ * 2);
  return now;
}

RefusalReports::RefusalReports(size_t per_interval, std::chrono::milliseconds interval)
    : per_interval_(per_interval), interval_(std::max(interval, std::chrono::milliseconds(1))) {}

bool RefusalReports::Admit(RefusalKind kind, TimePoint now) {
  if (now >= end_) {
    end_ = now + interval_;
    admitted_ = 0;
  }
  if (admitted_ < per_interval_) {
    ++admitted_;
    return true;
  }
  ++held_[static_cast<size_t>(kind)];
  ++held_total_;
  return false;
}

std::optional<std::string> RefusalReports::TakeSummary(TimePoint now, size_t limit) {
  if (held_total_ == 0 || now < end_) return std::nullopt;
  const auto ms = interval_.count();
  std::string s = "and " + std::to_string(held_total_) + " more in the last " +
                  (ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms") + ":";
  const char* sep = " ";
  auto part = [&](RefusalKind k, const std::string& what) {
    uint64_t n = held_[static_cast<size_t>(k)];
    if (n == 0) return;
    s += sep + std::to_string(n) + " " + what;
    sep = ", ";
  };
  part(RefusalKind::kOverLimit,
       "closed to make room (over " + std::to_string(limit) + " unauthenticated connections)");
  part(RefusalKind::kTimeout, "timed out or hung up in the handshake");
  part(RefusalKind::kNotPaired, "not paired");
  part(RefusalKind::kBroken, "broken or not TLS");
  part(RefusalKind::kAcceptError,
       "accept errors" + (last_accept_error_.empty() ? "" : " (" + last_accept_error_ + ")"));
  held_ = {};
  held_total_ = 0;
  return s;
}

}  // namespace entrysync::net
