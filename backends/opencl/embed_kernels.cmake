# cmake -DOUT=<header> -DNAMES=<a,b,...> -DDIR=<kernels dir> -P embed_kernels.cmake
# Writes one `static const char ocl_src_<name>[]` byte array (NUL-terminated) per kernel file,
# plus a table of them, so that no string literal exceeds C's portable length limit.
set(text "/* Generated from backends/opencl/kernels/<family>.cl by embed_kernels.cmake: do not edit. */\n")
string(APPEND text "#ifndef LOOM_OCL_KERNELS_H\n#define LOOM_OCL_KERNELS_H\n\n")
string(REPLACE "," ";" NAMES "${NAMES}")
foreach(n ${NAMES})
  file(READ ${DIR}/${n}.cl hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," hex "${hex}")
  string(REGEX REPLACE "(0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,0x..,)" "\\1\n" hex "${hex}")
  string(APPEND text "static const char ocl_src_${n}[] = {\n${hex}0x00};\n\n")
endforeach()
string(APPEND text "#endif\n")
file(WRITE ${OUT}.tmp "${text}")
file(COPY_FILE ${OUT}.tmp ${OUT} ONLY_IF_DIFFERENT)
file(REMOVE ${OUT}.tmp)
