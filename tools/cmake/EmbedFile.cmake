# cmake -DINPUT=file -DOUTPUT=file.cc -DNAME=kSymbol -P EmbedFile.cmake
# Writes a .cc defining `extern const std::string_view NAME` holding INPUT's bytes (the
# dashboard page is compiled into salvod: no files to install or find at run time).
file(READ "${INPUT}" content HEX)
string(LENGTH "${content}" hex_len)
math(EXPR size "${hex_len} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "'\\\\x\\1'," bytes "${content}")
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${INPUT} by tools/cmake/EmbedFile.cmake. Do not edit.\n"
  "#include <string_view>\n"
  "namespace salvo::admin {\n"
  "namespace { constexpr char kBytes[] = {${bytes}0}; }\n"
  "extern const std::string_view ${NAME};\n"
  "const std::string_view ${NAME}(kBytes, ${size});\n"
  "}  // namespace salvo::admin\n")
file(RENAME "${OUTPUT}.tmp" "${OUTPUT}")
