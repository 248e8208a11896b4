# cmake -DDIR=folder [-DEXCLUDE=a.cc;b.h] -P check_public_includes.cmake
#
# Fails when a C++ file in DIR includes anything but the public API
# ("entrysync/..."), the folder's own headers ("<folder name>/..."), the
# standard and system headers, or third-party headers an application has
# (<CLI/...>, <nlohmann/...>). STYLE.md 14: the CLI is one client of the
# public API; if it needs an internal header, the API is missing something.
cmake_minimum_required(VERSION 3.25)
get_filename_component(own "${DIR}" NAME)
file(GLOB files "${DIR}/*.cc" "${DIR}/*.h")
set(bad "")
foreach(f ${files})
  get_filename_component(name "${f}" NAME)
  if(name IN_LIST EXCLUDE)
    continue()
  endif()
  file(STRINGS "${f}" lines REGEX "^[ \t]*#[ \t]*include")
  foreach(line ${lines})
    if(line MATCHES "#[ \t]*include[ \t]*\"([^\"]+)\"")
      set(inc "${CMAKE_MATCH_1}")
      if(NOT inc MATCHES "^entrysync/" AND NOT inc MATCHES "^${own}/")
        list(APPEND bad "${name}: ${line}")
      endif()
    elseif(line MATCHES "#[ \t]*include[ \t]*<([^>]+)>")
      set(inc "${CMAKE_MATCH_1}")
      if(inc MATCHES "^(spdlog|fmt|asio|openssl|google|zstd|sqlite3|zlib|gtest|gmock)")
        list(APPEND bad "${name}: ${line}")
      endif()
    endif()
  endforeach()
endforeach()
if(bad)
  list(JOIN bad "\n  " text)
  message(FATAL_ERROR "internal or third-party headers outside the public API:\n  ${text}")
endif()
