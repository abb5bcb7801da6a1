# sluice_add_library(<target> <export name> <sources>...): one of Sluice's libraries, the same
# way for all three: an alias sluice::<export name>, position-independent code, a SONAME that
# follows the project's major version (shared by default: BUILD_SHARED_LIBS), C++20, the public
# headers under include/ (installed as they are), and the warnings and sanitizers of
# sluice_settings for our own code only.
function(sluice_add_library target export_name)
  add_library(${target} ${ARGN})
  add_library(sluice::${export_name} ALIAS ${target})
  set_target_properties(${target} PROPERTIES
    EXPORT_NAME ${export_name}
    POSITION_INDEPENDENT_CODE ON
    VERSION ${PROJECT_VERSION}
    SOVERSION ${PROJECT_VERSION_MAJOR})
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_include_directories(${target} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${target} PRIVATE $<BUILD_INTERFACE:sluice_settings>)
  install(DIRECTORY include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
endfunction()

# sluice_use_mimalloc(<target>): a tool (not a library) takes mimalloc as its process-wide malloc
# when SLUICE_USE_MIMALLOC is on.
function(sluice_use_mimalloc target)
  if(SLUICE_USE_MIMALLOC)
    target_link_libraries(${target} PRIVATE mimalloc)
  endif()
endfunction()
