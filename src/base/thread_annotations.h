// Clang's thread-safety annotations (https://clang.llvm.org/docs/ThreadSafetyAnalysis.html).
//
// They state, in the code, which lock guards which state and which lock a
// function expects; clang with -Wthread-safety checks them at compile time
// (CMake: ENTRYSYNC_THREAD_SAFETY, on by default with clang; CI runs the
// analysis over the whole tree in its clang-tidy stage). On other compilers
// (g++, the main one) every macro expands to nothing.
//
// How to annotate shared state (base/mutex.h holds the annotated Mutex):
//
//   class Cache {
//    public:
//     void Put(Key k, Value v) EXCLUDES(mu_);   // takes mu_ itself
//    private:
//     void Evict() REQUIRES(mu_);               // caller holds mu_
//     Mutex mu_;
//     std::map<Key, Value> map_ GUARDED_BY(mu_);
//     Stats* stats_ PT_GUARDED_BY(mu_);         // the pointee is guarded
//   };
//
//   void Cache::Put(Key k, Value v) {
//     MutexLock lock(mu_);
//     map_[k] = v;
//     Evict();
//   }
//
// Replace a comment "guarded by mu_" with GUARDED_BY(mu_) and "REQUIRES: mu_
// held" with REQUIRES(mu_). The analysis is per function: a lambda does not
// inherit its enclosing function's locks (take the lock inside it, or, when
// a caller provably holds it, call mu_.AssertHeld()). State confined to one
// thread or event loop can be checked the same way with a ThreadRole
// (base/mutex.h). NO_THREAD_SAFETY_ANALYSIS is the last resort: say why
// beside it.
#pragma once

#if defined(__clang__)
#define ES_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define ES_THREAD_ANNOTATION_(x)
#endif

// On a class: its objects are capabilities (locks); `x` names the kind in
// diagnostics ("mutex", "role").
#define CAPABILITY(x) ES_THREAD_ANNOTATION_(capability(x))
// On a class: RAII objects that hold a capability while they live.
#define SCOPED_CAPABILITY ES_THREAD_ANNOTATION_(scoped_lockable)

// On a data member or global: read and written only while `x` is held.
#define GUARDED_BY(x) ES_THREAD_ANNOTATION_(guarded_by(x))
// On a pointer: what it points to is read and written only while `x` is held.
#define PT_GUARDED_BY(x) ES_THREAD_ANNOTATION_(pt_guarded_by(x))

// On a lock member: it is acquired after / before the listed locks.
#define ACQUIRED_AFTER(...) ES_THREAD_ANNOTATION_(acquired_after(__VA_ARGS__))
#define ACQUIRED_BEFORE(...) ES_THREAD_ANNOTATION_(acquired_before(__VA_ARGS__))

// On a function: the caller must hold the listed capabilities (exclusively,
// or at least shared), which are still held when it returns.
#define REQUIRES(...) ES_THREAD_ANNOTATION_(requires_capability(__VA_ARGS__))
#define REQUIRES_SHARED(...) ES_THREAD_ANNOTATION_(requires_shared_capability(__VA_ARGS__))
// On a function: the caller must not hold them (the function takes them).
#define EXCLUDES(...) ES_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))

// On a function: it acquires / releases the listed capabilities (none
// listed: `this`, or for a scoped capability's destructor, what it holds).
#define ACQUIRE(...) ES_THREAD_ANNOTATION_(acquire_capability(__VA_ARGS__))
#define ACQUIRE_SHARED(...) ES_THREAD_ANNOTATION_(acquire_shared_capability(__VA_ARGS__))
#define RELEASE(...) ES_THREAD_ANNOTATION_(release_capability(__VA_ARGS__))
#define RELEASE_SHARED(...) ES_THREAD_ANNOTATION_(release_shared_capability(__VA_ARGS__))
// On a function returning bool: it acquired them when it returns `x`.
#define TRY_ACQUIRE(...) ES_THREAD_ANNOTATION_(try_acquire_capability(__VA_ARGS__))

// On a function: after it returns, the analysis assumes the capability is
// held (it checks at run time, or the caller's context guarantees it).
#define ASSERT_CAPABILITY(x) ES_THREAD_ANNOTATION_(assert_capability(x))
// On a function: it returns a reference to this capability.
#define RETURN_CAPABILITY(x) ES_THREAD_ANNOTATION_(lock_returned(x))

// On a function: not analysed. Say why beside it.
#define NO_THREAD_SAFETY_ANALYSIS ES_THREAD_ANNOTATION_(no_thread_safety_analysis)
