# Writes a C++ source that holds every preset TOML file as a raw string, keyed by its file name.
# Called by CMakeLists.txt with -DOUT=<file.cpp> -DFILES=<a;b;c>.
set(body "// Generated from configs/presets/*.toml by tools/embed_presets.cmake. Do not edit.\n")
string(APPEND body "#include <map>\n#include <string>\nnamespace gancu {\n")
string(APPEND body "const std::map<std::string, std::string>& embedded_presets() {\n")
string(APPEND body "  static const std::map<std::string, std::string> presets = {\n")
foreach(f ${FILES})
  get_filename_component(name "${f}" NAME_WE)
  file(READ "${f}" text)
  string(APPEND body "    {\"${name}\", R\"gancu_preset(${text})gancu_preset\"},\n")
endforeach()
string(APPEND body "  };\n  return presets;\n}\n}  // namespace gancu\n")
file(WRITE "${OUT}.tmp" "${body}")
file(RENAME "${OUT}.tmp" "${OUT}")
