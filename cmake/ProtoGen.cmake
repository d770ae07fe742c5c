# ta_proto_library(NAME target PROTOS a.proto... IMPORT_DIR dir [GRPC])
# Generates C++ (and with GRPC, gRPC stubs) into the build tree and wraps them in a static library.
# Generated headers are only visible to targets that link the library, so they stay out of
# widely included headers.
function(ta_proto_library)
  cmake_parse_arguments(P "GRPC" "NAME;IMPORT_DIR" "PROTOS" ${ARGN})
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/gen)
  file(MAKE_DIRECTORY ${out_dir})
  set(srcs)
  foreach(proto ${P_PROTOS})
    file(RELATIVE_PATH rel ${P_IMPORT_DIR} ${proto})
    string(REGEX REPLACE "\\.proto$" "" base ${rel})
    set(outs ${out_dir}/${base}.pb.cc ${out_dir}/${base}.pb.h)
    set(args --cpp_out=${out_dir})
    if(P_GRPC)
      list(APPEND outs ${out_dir}/${base}.grpc.pb.cc ${out_dir}/${base}.grpc.pb.h)
      list(APPEND args --grpc_out=${out_dir} --plugin=protoc-gen-grpc=${TA_GRPC_CPP_PLUGIN})
    endif()
    add_custom_command(
      OUTPUT ${outs}
      COMMAND ${TA_PROTOC} -I${P_IMPORT_DIR} -I${Protobuf_INCLUDE_DIRS} ${args} ${proto}
      DEPENDS ${proto}
      COMMENT "protoc ${rel}"
      VERBATIM)
    list(APPEND srcs ${outs})
  endforeach()
  add_library(${P_NAME} STATIC ${srcs})
  target_include_directories(${P_NAME} PUBLIC ${out_dir})
  target_link_libraries(${P_NAME} PUBLIC protobuf::libprotobuf)
  if(P_GRPC)
    target_link_libraries(${P_NAME} PUBLIC gRPC::grpc++)
  endif()
endfunction()
