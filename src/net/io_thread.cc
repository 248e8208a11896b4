#include "net/io_thread.h"

#include <pthread.h>

#include <asio/post.hpp>
#include <cassert>
#include <cstdio>

namespace entrysync {

IoThread::IoThread(const std::string& name) : io_(1), work_(asio::make_work_guard(io_)) {
  thread_ = std::thread([this, name] {
    pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
    thread_id_.store(std::this_thread::get_id());
    // Handlers do not throw (errors are values in this code base); run
    // returns when the loop is stopped.
    io_.run();
  });
}

IoThread::~IoThread() { Stop(); }

void IoThread::Post(std::function<void()> fn) { asio::post(io_, std::move(fn)); }

bool IoThread::InIoThread() const { return thread_id_.load() == std::this_thread::get_id(); }

void IoThread::Stop() {
  if (!thread_.joinable()) return;
  assert(!InIoThread());
  work_.reset();
  io_.stop();
  thread_.join();
}

}  // namespace entrysync
