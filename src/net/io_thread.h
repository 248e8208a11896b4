// IoThread: one asio event loop on one thread.
//
// A node owns one IoThread; every TLS listener and connection of the node
// lives on its io_context, and all their handlers run on its thread, one at
// a time. Other threads hand work to it with Post (or asio::post).
#pragma once

#ifndef ASIO_STANDALONE
#define ASIO_STANDALONE
#endif
#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <atomic>
#include <functional>
#include <optional>
#include <string>
#include <thread>

namespace entrysync {

class IoThread {
 public:
  // Starts the thread; `name` (at most 15 chars) shows in debuggers.
  explicit IoThread(const std::string& name = "es-io");
  // Stop()s.
  ~IoThread();
  IoThread(const IoThread&) = delete;
  IoThread& operator=(const IoThread&) = delete;

  asio::io_context& context() { return io_; }

  // Runs `fn` on the io thread soon. Thread-safe. Dropped (destroyed
  // without running) after Stop.
  void Post(std::function<void()> fn);

  // True when called from the io thread.
  bool InIoThread() const;

  // Stops the loop and joins the thread. Handlers not yet run are dropped:
  // close handlers of connections still open do not run, so close them
  // first for an orderly shutdown. Idempotent. REQUIRES: not called on the
  // io thread. Objects bound to the io_context (listeners, streams) may be
  // destroyed after Stop but not after the IoThread.
  void Stop();

 private:
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::atomic<std::thread::id> thread_id_;
};

}  // namespace entrysync
