# How this workspace builds llama.cpp (under llama-cpp-sys-2) for the embedded provider.
#
# Cargo hands this file to CMake as CMAKE_PROJECT_INCLUDE (.cargo/config.toml): llama-cpp-sys-2
# forwards every CMAKE_* variable of its environment, and CMake includes the file after each
# project() call. It applies to builds inside this repository only; a crate that depends on
# metaprompt-llama from a registry builds llama.cpp as llama-cpp-sys-2 does by default.
#
# What it changes is the optimization of code the provider never runs hot; inference (ggml)
# and the per-token path of llama (sampler, grammar, vocabulary, decode, KV cache) keep -O3.
# Measured on 2 cores in README.md, "Build profile". CMake 3.19 or newer (older: no change).
include_guard(GLOBAL)

if(CMAKE_VERSION VERSION_LESS 3.19)
  return()
endif()

function(_metaprompt_tune_llama)
  # `common` (the provider calls one of its functions, json_schema_to_grammar, once per
  # structured request) and the HTTP client `common` links for model downloads, which the
  # provider never makes: no optimization.
  foreach(target llama-common cpp-httplib)
    if(TARGET ${target})
      target_compile_options(${target} PRIVATE $<IF:$<CXX_COMPILER_ID:MSVC>,/Od,-O0>)
    endif()
  endforeach()
  # llama: -O0 for what runs once per model or per graph (loading, quantization, the graph
  # builders of 150 architectures, other architectures' memories), -O3 for the sources that
  # run per token.
  if(TARGET llama)
    target_compile_options(llama PRIVATE $<IF:$<CXX_COMPILER_ID:MSVC>,/Od,-O0>)
    get_target_property(dir llama SOURCE_DIR)
    foreach(hot llama.cpp llama-batch.cpp llama-context.cpp llama-grammar.cpp llama-graph.cpp
                llama-kv-cache.cpp llama-sampler.cpp llama-vocab.cpp unicode.cpp unicode-data.cpp)
      if(EXISTS "${dir}/${hot}")
        set_source_files_properties("${dir}/${hot}" TARGET_DIRECTORY llama
          PROPERTIES COMPILE_OPTIONS $<IF:$<CXX_COMPILER_ID:MSVC>,/O2,-O3>)
      endif()
    endforeach()
  endif()
endfunction()
cmake_language(DEFER DIRECTORY "${CMAKE_SOURCE_DIR}" CALL _metaprompt_tune_llama)
