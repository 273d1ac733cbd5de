# Build-time rewrite of a CUDA source for the SIMT emulator (GANCU_CUDA_EMULATION): the kernel
# file itself stays as written; the copy compiled as C++ differs in two spellings that no macro can
# express. Line numbers are kept (#line and the original newlines), so messages point at the .cu.
#
#   kernel<<<grid, block, shared, stream>>>(args)
#     -> ::simt::Launch("kernel", __FILE__, __LINE__, grid, block, shared, stream).kernel(kernel)(args)
#   extern __shared__ T name[];
#     -> T* name = ::simt::dynamic_shared<T>();
#
# Usage: cmake -DIN=file.cu -DOUT=file.cpp -P rewrite_launches.cmake
file(READ "${IN}" src)
string(REGEX REPLACE
       "extern[ \t]+__shared__[ \t]+([A-Za-z_][A-Za-z0-9_:]*)[ \t]+([A-Za-z_][A-Za-z0-9_]*)[ \t]*\\[\\][ \t]*;"
       "\\1* \\2 = ::simt::dynamic_shared<\\1>();" src "${src}")
string(REGEX REPLACE
       "([A-Za-z_][A-Za-z0-9_:]*(<[A-Za-z0-9_:, ]*>)?)([ \t\r\n]*)<<<([^<>]*)>>>"
       "::simt::Launch(\"\\1\", __FILE__, __LINE__, \\4).kernel(\\1)\\3" src "${src}")
if(src MATCHES "<<<|>>>")
  message(FATAL_ERROR "${IN}: a launch that rewrite_launches.cmake cannot rewrite (kernel name or configuration)")
endif()
file(WRITE "${OUT}.tmp" "#line 1 \"${IN}\"\n${src}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUT}.tmp")
