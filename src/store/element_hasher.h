// ElementBatch and ElementHasher: the set digest's elements, hashed in
// batches on a helper thread while the writing thread goes on.
//
// Expanding an element into its LtHash lanes (base/lthash.h) costs about a
// microsecond, as much as SQLite spends storing the row. OwnerDigests
// (store/digest.h) collects the elements of a transaction in an
// ElementBatch and hands each full batch to an ElementHasher, whose thread
// folds it into per-owner deltas; the writer only copies bytes. Drain()
// waits for the thread and takes the deltas, just before COMMIT.
//
//   ElementHasher hasher;
//   hasher.Submit(std::move(full_batch));   // blocks while two are queued
//   ...
//   DeltaMap deltas = hasher.Drain();      // everything submitted, hashed
//
// Memory is bounded: at most two batches wait and one is being hashed. The
// thread starts with the first Submit (small transactions never start it)
// and stops with the object.
//
// Thread safety: ElementBatch is a value type. ElementHasher's methods are
// for one thread (the library's); its own thread only hashes.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/lthash.h"
#include "base/mutex.h"

namespace entrysync {

// Owner row id -> the sum of the elements added minus those removed.
using DeltaMap = std::map<int64_t, LtHash>;

// Elements of one or more owners, each to be added (+1) or removed (-1),
// their bytes back to back in one buffer.
class ElementBatch {
 public:
  struct Item {
    int64_t owner;
    int32_t sign;
    uint32_t size;
  };

  // The buffer an element is appended to; then Commit(owner, sign, start)
  // records the bytes from `start` to the end as one element.
  std::string& buffer() { return bytes_; }
  void Commit(int64_t owner, int sign, size_t start) {
    items_.push_back({owner, sign, static_cast<uint32_t>(bytes_.size() - start)});
  }

  size_t size() const { return items_.size(); }
  bool empty() const { return items_.empty(); }
  void Clear() {
    bytes_.clear();
    items_.clear();
  }
  void Reserve(size_t elements, size_t bytes) {
    items_.reserve(elements);
    bytes_.reserve(bytes);
  }
  // Calls f(owner, sign, element bytes) for each element in order.
  template <typename F>
  void ForEach(F&& f) const {
    size_t at = 0;
    for (const Item& it : items_) {
      f(it.owner, it.sign, std::string_view(bytes_).substr(at, it.size));
      at += it.size;
    }
  }
  // Mutable bytes of each element, for patching a field in place.
  template <typename F>
  void ForEachMutable(F&& f) {
    size_t at = 0;
    for (const Item& it : items_) {
      f(it.owner, bytes_.data() + at, it.size);
      at += it.size;
    }
  }
  // Adds each element's expansion to (or subtracts it from) its owner's delta.
  void HashInto(DeltaMap& deltas) const;

 private:
  std::string bytes_;
  std::vector<Item> items_;
};

class ElementHasher {
 public:
  ElementHasher() = default;
  ElementHasher(const ElementHasher&) = delete;
  ElementHasher& operator=(const ElementHasher&) = delete;
  ~ElementHasher();

  // Queues a batch for the thread; blocks while two batches wait.
  void Submit(ElementBatch&& batch) EXCLUDES(mu_);
  // An empty batch to fill next: one the thread has hashed (its memory
  // kept), or a new one.
  ElementBatch Spare() EXCLUDES(mu_);
  // Waits until every submitted batch is hashed; returns their deltas and
  // starts over from none.
  DeltaMap Drain() EXCLUDES(mu_);
  // As Drain, dropping the deltas (a rolled-back transaction).
  void Discard() EXCLUDES(mu_) { (void)Drain(); }
  // True while something submitted has not been drained.
  bool busy() EXCLUDES(mu_);

 private:
  void Run() EXCLUDES(mu_);

  Mutex mu_;
  CondVar work_;  // a batch queued, or stop_
  CondVar done_;  // queue shorter, or idle
  std::deque<ElementBatch> queue_ GUARDED_BY(mu_);
  bool hashing_ GUARDED_BY(mu_) = false;
  bool stop_ GUARDED_BY(mu_) = false;
  DeltaMap deltas_ GUARDED_BY(mu_);
  std::vector<ElementBatch> spare_ GUARDED_BY(mu_);  // hashed, emptied, for Spare
  std::thread thread_;                               // started by the first Submit; joined by the destructor
};

}  // namespace entrysync
