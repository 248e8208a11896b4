# es_embed_files(OUT_CC VAR_PREFIX FILES...): generates a .cc defining
#   extern const char* const <VAR_PREFIX>_names[];
#   extern const char* const <VAR_PREFIX>_texts[];
#   extern const int <VAR_PREFIX>_count;
# holding each file's base name and contents, in the order given.
function(es_embed_files out_cc prefix)
  set(files ${ARGN})
  # A list cannot cross the command line as is (";" ends a shell command):
  # pass it with "," between the files.
  string(REPLACE ";" "," files_arg "${files}")
  add_custom_command(
    OUTPUT ${out_cc}
    COMMAND ${CMAKE_COMMAND} -DOUT=${out_cc} -DPREFIX=${prefix} "-DFILES=${files_arg}"
            -P ${CMAKE_SOURCE_DIR}/cmake/embed_script.cmake
    DEPENDS ${files} ${CMAKE_SOURCE_DIR}/cmake/embed_script.cmake
    COMMENT "Embedding ${prefix}"
    VERBATIM)
endfunction()
