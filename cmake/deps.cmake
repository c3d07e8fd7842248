# Third-party libraries from Debian. Static archives are preferred so the binary
# built here runs on the GPU machine (no Debian packages there); CUDA stays dynamic.
find_package(Threads REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(Boost REQUIRED)  # header-only parts: Asio, Beast

function(tandem_find_static var)
  find_library(${var} NAMES ${ARGN} REQUIRED)
  message(STATUS "${var}: ${${var}}")
endfunction()

tandem_find_static(TANDEM_PCRE2 libpcre2-8.a pcre2-8)
tandem_find_static(TANDEM_XXHASH libxxhash.a xxhash)
tandem_find_static(TANDEM_OPENBLAS libopenblas.a openblas)
find_library(TANDEM_GFORTRAN NAMES libgfortran.a gfortran
  HINTS /usr/lib/gcc/x86_64-linux-gnu/12 /usr/lib/gcc/x86_64-linux-gnu/13)
find_library(TANDEM_QUADMATH NAMES libquadmath.a quadmath
  HINTS /usr/lib/gcc/x86_64-linux-gnu/12 /usr/lib/gcc/x86_64-linux-gnu/13)
# Debian ships libsentencepiece only as a shared library; it is optional at
# build time and needed only for folders with a bare tokenizer.model.
find_library(TANDEM_SENTENCEPIECE NAMES sentencepiece)

add_library(tandem_deps INTERFACE)
target_include_directories(tandem_deps INTERFACE /usr/include/openblas /usr/include/x86_64-linux-gnu/openblas-pthread)
target_compile_definitions(tandem_deps INTERFACE PCRE2_CODE_UNIT_WIDTH=8)
target_link_libraries(tandem_deps INTERFACE
  nlohmann_json::nlohmann_json Boost::headers
  ${TANDEM_PCRE2} ${TANDEM_XXHASH} ${TANDEM_OPENBLAS})
if(TANDEM_GFORTRAN)
  target_link_libraries(tandem_deps INTERFACE ${TANDEM_GFORTRAN})
endif()
if(TANDEM_QUADMATH)
  target_link_libraries(tandem_deps INTERFACE ${TANDEM_QUADMATH})
endif()
if(TANDEM_SENTENCEPIECE)
  target_compile_definitions(tandem_deps INTERFACE TANDEM_HAVE_SENTENCEPIECE=1)
  target_link_libraries(tandem_deps INTERFACE ${TANDEM_SENTENCEPIECE})
endif()
target_link_libraries(tandem_deps INTERFACE Threads::Threads ${CMAKE_DL_LIBS} m)
# libstdc++ and libgcc statically: the GPU machine's runtime may be older.
target_link_options(tandem_deps INTERFACE -static-libstdc++ -static-libgcc)
