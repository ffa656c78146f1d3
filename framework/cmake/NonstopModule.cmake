# nonstop_add_module(<target> <source>... [OUTPUT_NAME <name>])
#
# Builds a module library that the nonstop runtime can load, replace and really unload.
# Hidden visibility keeps every symbol but the exported factory private to the library, and
# -fno-gnu-unique stops GCC from marking inline/template statics STB_GNU_UNIQUE, which would make
# dlclose() a silent no-op and keep the old version mapped forever.
function(nonstop_add_module target)
  cmake_parse_arguments(ARG "" "OUTPUT_NAME" "" ${ARGN})
  add_library(${target} MODULE ${ARG_UNPARSED_ARGUMENTS})
  target_link_libraries(${target} PRIVATE nonstop::framework)
  set_target_properties(${target} PROPERTIES
    CXX_VISIBILITY_PRESET hidden
    VISIBILITY_INLINES_HIDDEN ON
    PREFIX "lib")
  if(ARG_OUTPUT_NAME)
    set_target_properties(${target} PROPERTIES OUTPUT_NAME ${ARG_OUTPUT_NAME})
  endif()
  target_compile_options(${target} PRIVATE -fno-gnu-unique)
  # Unresolved symbols must fail at link time, not at dlopen time inside a running server.
  target_link_options(${target} PRIVATE -Wl,--no-undefined)
endfunction()
