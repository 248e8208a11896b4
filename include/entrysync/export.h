// ENTRYSYNC_EXPORT marks what libentrysync.so exports: the declarations in
// include/entrysync/. Everything else in the library is built with hidden
// visibility (see the top-level CMakeLists.txt).
#pragma once

#define ENTRYSYNC_EXPORT __attribute__((visibility("default")))
