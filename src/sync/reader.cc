#include "sync/reader.h"

#include <pthread.h>

#include <asio/executor_work_guard.hpp>
#include <asio/io_context.hpp>
#include <optional>
#include <thread>

namespace entrysync {

// One lane: its connection and, when threaded, its own io_context and thread.
// Jobs hold the connection by weak pointer: with no thread they run on the
// loop and may come up after the Reader is gone.
struct Reader::LaneState {
  std::shared_ptr<Library> lib;
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  SyncExecutor exec;  // the lane's thread, or the loop

  ~LaneState() {
    if (thread.joinable()) {
      work.reset();
      io.stop();
      thread.join();
    }
  }
};

Reader::Reader(SyncExecutor loop, bool threads) : loop_(std::move(loop)), threaded_(threads) {}

Reader::~Reader() {
  for (auto& lane : lanes_) lane.reset();
}

Result<std::unique_ptr<Reader>> Reader::Start(const std::string& library_dir, const SyncExecutor& loop,
                                              bool threads) {
  std::unique_ptr<Reader> r(new Reader(loop, threads));
  for (int i = 0; i < 2; ++i) {
    auto lane = std::make_unique<LaneState>();
    // Serving only reads; an export ATTACHes the snapshot file and writes
    // it, which a query_only connection refuses.
    if (static_cast<Lane>(i) == Lane::kServe) {
      ES_ASSIGN_OR_RETURN(lane->lib, Library::OpenForReading(library_dir));
    } else {
      ES_ASSIGN_OR_RETURN(lane->lib, Library::Open(library_dir));
      lane->lib->SetCommitNotices(false);
    }
    lane->exec = loop;
    if (threads) {
      lane->work.emplace(lane->io.get_executor());
      lane->exec = lane->io.get_executor();
      const char* name = static_cast<Lane>(i) == Lane::kServe ? "es-read" : "es-export";
      lane->thread = std::thread([io = &lane->io, name] {
        pthread_setname_np(pthread_self(), name);
        io->run();
      });
    }
    r->lanes_[i] = std::move(lane);
  }
  return r;
}

void Reader::Post(Lane lane, std::function<void(Library&)> job) {
  LaneState& l = *lanes_[static_cast<int>(lane)];
  asio::post(l.exec, [lib = std::weak_ptr<Library>(l.lib), job = std::move(job)] {
    if (auto keep = lib.lock()) job(*keep);
  });
}

}  // namespace entrysync
