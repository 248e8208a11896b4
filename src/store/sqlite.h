// Thin RAII wrappers over the SQLite C API.
//
// Thread safety: a Db and its Stmts belong to one thread at a time.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "entrysync/status.h"
#include "entrysync/types.h"

namespace entrysync::store {

class Db;

// A prepared statement. Bind* take 1-based indexes. Reset() clears the
// bindings' results so the statement can run again.
class Stmt {
 public:
  Stmt() = default;
  Stmt(Stmt&& o) noexcept : st_(o.st_), db_(o.db_) { o.st_ = nullptr; }
  Stmt& operator=(Stmt&& o) noexcept;
  ~Stmt();

  Stmt& Bind(int i, int64_t v);
  Stmt& Bind(int i, std::string_view v);
  Stmt& BindBlob(int i, const void* data, size_t n);
  Stmt& Bind(int i, const Uuid& u) { return BindBlob(i, u.bytes.data(), 16); }
  Stmt& BindNull(int i);

  // Runs one step: true when a row is available, false when done.
  Result<bool> Step();
  // Runs to completion, ignoring rows.
  Status Run();
  void Reset();

  int64_t Int(int col) const { return sqlite3_column_int64(st_, col); }
  std::string_view Text(int col) const;
  std::string_view Blob(int col) const;
  bool IsNull(int col) const { return sqlite3_column_type(st_, col) == SQLITE_NULL; }
  // A 16-byte blob as a Uuid; Nil when NULL or malformed.
  Uuid UuidAt(int col) const;

 private:
  friend class Db;
  Stmt(sqlite3_stmt* st, sqlite3* db) : st_(st), db_(db) {}
  sqlite3_stmt* st_ = nullptr;
  sqlite3* db_ = nullptr;
};

class Db {
 public:
  Db() = default;
  Db(Db&& o) noexcept : db_(o.db_), path_(std::move(o.path_)), before_commit_(std::move(o.before_commit_)) {
    o.db_ = nullptr;
  }
  Db& operator=(Db&&) = delete;
  ~Db();

  // Opens (creating when `create`) the database file at `path`.
  static Result<Db> Open(const std::string& path, bool create);

  Status Exec(const std::string& sql);
  Result<Stmt> Prepare(std::string_view sql);
  int64_t LastInsertRowId() const { return sqlite3_last_insert_rowid(db_); }
  int Changes() const { return sqlite3_changes(db_); }
  sqlite3* raw() const { return db_; }
  const std::string& path() const { return path_; }
  // "sqlite: <message>" for the connection's last error.
  Status Error(const char* what) const;
  // Runs inside every Transaction just before its COMMIT; an error fails
  // the commit (the transaction then rolls back). The library folds its
  // digest deltas in here (store/digest.h).
  void SetBeforeCommit(std::function<Status()> fn) { before_commit_ = std::move(fn); }

 private:
  friend class Transaction;
  sqlite3* db_ = nullptr;
  std::string path_;
  std::function<Status()> before_commit_;
};

// BEGIN IMMEDIATE ... COMMIT; rolls back on destruction unless committed.
class Transaction {
 public:
  explicit Transaction(Db& db) : db_(db) {}
  ~Transaction();
  Status Begin();
  Status Commit();

 private:
  Db& db_;
  bool open_ = false;
};

}  // namespace entrysync::store
