# Finds moodycamel's header-only ConcurrentQueue (Debian: libconcurrentqueue-dev) and defines the
# imported target ConcurrentQueue::ConcurrentQueue (include with <concurrentqueue/...>).
find_path(ConcurrentQueue_INCLUDE_DIR concurrentqueue/blockingconcurrentqueue.h)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(ConcurrentQueue REQUIRED_VARS ConcurrentQueue_INCLUDE_DIR)
if(ConcurrentQueue_FOUND AND NOT TARGET ConcurrentQueue::ConcurrentQueue)
  add_library(ConcurrentQueue::ConcurrentQueue INTERFACE IMPORTED)
  set_target_properties(ConcurrentQueue::ConcurrentQueue PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${ConcurrentQueue_INCLUDE_DIR}")
endif()
mark_as_advanced(ConcurrentQueue_INCLUDE_DIR)
