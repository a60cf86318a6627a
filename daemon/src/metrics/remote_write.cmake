# Remote write library (see remote_write.c). Its protobuf code is generated at build
# time from proto/remote.proto into the build tree, never committed.
set(XRAYD_PROTO_DIR ${PROJECT_SOURCE_DIR}/proto)
set(XRAYD_PROTO_OUT ${CMAKE_CURRENT_BINARY_DIR}/proto)
add_custom_command(
  OUTPUT ${XRAYD_PROTO_OUT}/remote.pb-c.c ${XRAYD_PROTO_OUT}/remote.pb-c.h
  COMMAND ${CMAKE_COMMAND} -E make_directory ${XRAYD_PROTO_OUT}
  COMMAND ${PROTOC_C} --proto_path=${XRAYD_PROTO_DIR} --c_out=${XRAYD_PROTO_OUT}
          ${XRAYD_PROTO_DIR}/remote.proto
  DEPENDS ${XRAYD_PROTO_DIR}/remote.proto
  COMMENT "protoc-c remote.proto"
  VERBATIM)

add_library(xrayd_remote_write STATIC
  remote_write.c
  ${XRAYD_PROTO_OUT}/remote.pb-c.c
)
target_include_directories(xrayd_remote_write PUBLIC ${XRAYD_PROTO_OUT})
# libsnappy.so records its own libstdc++ dependency, so a C link needs nothing more.
target_link_libraries(xrayd_remote_write PUBLIC
  xrayd_metrics PkgConfig::PROTOBUF_C PkgConfig::SNAPPY)
